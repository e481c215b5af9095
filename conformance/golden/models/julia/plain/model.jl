# The golden-case fixture model, no hooks (conformance/golden/README.md): the same behaviour as
# models/python/plain/model.py and models/r/plain/model.R.

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
