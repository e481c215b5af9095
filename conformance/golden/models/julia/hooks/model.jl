# The golden-case fixture model with hooks (conformance/golden/README.md): the plain model plus
# `input_fn` / `output_fn`; the same behaviour as models/python/hooks/model.py and
# models/r/hooks/model.R. Self-contained: the file is copied alone into /opt/program.

struct GoldenModel
    scale::Float64
    offset::Int
end

hyperparameters(::Type{GoldenModel}) =
    (scale = 1.0, offset = 0, flag = false, label = "x", tags = [], target = "y", fail = "")

function fit(::Type{GoldenModel}, data, hp)
    hp.fail == "fit" && error("fit failed on purpose")
    resumed = nothing
    if hp.fail == "after-checkpoint"                 # a spot-style stop: the next run resumes (D8)
        state = load_checkpoint()
        if state === nothing
            save_checkpoint(Dict("step" => 1))
            write(joinpath(checkpoint_dir(), "user-checkpoint.txt"), "1\n")
            error("stopped after checkpoint")
        end
        resumed = state["step"]
    end
    t = data["train"]
    c = cluster()
    seen = Dict{String,Any}(
        "hyperparameters" => Dict{String,Any}(string(k) => v for (k, v) in pairs(hp)),
        "sm_hps" => Rosetta.parse_json(ENV["SM_HPS"]),
        "columns" => t.columns,
        "rows" => size(t.rows, 1),
        "first_column" => t.rows[:, 1],
        "channels" => channels(data),
        "cluster" => Dict("hosts" => c.hosts, "current_host" => c.current_host, "is_first" => c.is_first,
                          "network_interface" => c.network_interface),
        "resumed" => resumed,
    )
    mkpath(ENV["SM_OUTPUT_DATA_DIR"])
    write(joinpath(ENV["SM_OUTPUT_DATA_DIR"], "seen.json"), Rosetta.json(seen))
    return GoldenModel(hp.scale, hp.offset)
end

function predict(m::GoldenModel, X)
    any(==(-999), X) && error("boom")
    out = vec(sum(X; dims = 2)) .* m.scale .+ m.offset
    return any(==(-1), X) ? out[1:end-1] : out
end

function input_fn(m::GoldenModel, body, content_type)
    if content_type == "application/x-semicolon"
        lines = filter(l -> !isempty(strip(l)), split(String(copy(body)), '\n'))
        rows = [parse.(Float64, split(strip(l), ';')) for l in lines]
        return permutedims(reduce(hcat, rows))
    elseif content_type == "application/x-raise"
        error("input refused")
    end
    return nothing
end

"Shortest round-trip form, integral values without a fraction (`6|15.5`)."
pipe_number(x) = isinteger(x) && abs(x) < 1e15 ? string(Int(x)) : string(Float64(x))

function output_fn(m::GoldenModel, predictions, accept)
    accept == "application/x-pipe" && return (join(pipe_number.(predictions), "|"), "application/x-pipe")
    accept == "application/x-raise-out" && error("output refused")
    return nothing
end
