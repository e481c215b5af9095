# Chain step 3 (Julia): class probabilities → {"label", "confidence"} per row. Training learns the
# class names (sorted, the order of the Python step's columns) and a temperature T that
# calibrates the confidence: p_k^(1/T), renormalised (T = 1 leaves the probabilities as they are).

struct PostProcessor
    classes::Vector{String}
    temperature::Float64
end

hyperparameters(::Type{PostProcessor}) = (target = "species", temperature = 1.0)

fit(::Type{PostProcessor}, data, hp) =
    PostProcessor(sort(unique(string.(column(data["train"], hp.target)))), Float64(hp.temperature))

# requests are the Python step's probabilities, one column per class (not the training table's columns)
feature_names(m::PostProcessor) = ["p_" * c for c in m.classes]

function predict(m::PostProcessor, P)
    map(eachrow(P)) do p
        q = max.(p, 0.0) .^ (1 / m.temperature)
        q = q ./ sum(q)
        k = argmax(q)
        Dict("label" => m.classes[k], "confidence" => round(q[k]; digits = 4))
    end
end

# text/csv answers one `label,confidence` line per row; the JSON types go through the runtime's codecs
function output_fn(::PostProcessor, predictions, accept)
    accept == "text/csv" || return nothing
    return (join("$(p["label"]),$(p["confidence"])\n" for p in predictions), "text/csv")
end
