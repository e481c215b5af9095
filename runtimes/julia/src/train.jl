# The training entry (`IMAGE train`, contract §3): hyperparameters → channels → toolkit env →
# fit → save + rosetta.json; every failure writes /opt/ml/output/failure reason-first (T-17).

read_json_file(path, default) = isfile(path) ? parse_json(read(path, String)) : default

"Hyperparameters as given (all strings, T-01); a file that is not a JSON object is an error."
function raw_hyperparameters()
    raw = try
        read_json_file(config_file("hyperparameters.json"), Dict{String,Any}())
    catch e
        e isa JSONError || rethrow()
        throw(HyperparameterError("hyperparameters.json is not valid JSON: $(e.msg)"))
    end
    raw isa AbstractDict || throw(HyperparameterError("hyperparameters.json is not a JSON object"))
    return raw
end

# The model type, once known: the SIGTERM path calls its checkpoint hook (T-13, T-21).
const TRAINING_TYPE = Ref{Any}(nothing)

"""
    train() -> model

One training run; throws on failure (see [`run_training`](@ref) for the failure file).
"""
function train()
    TRAINING_TYPE[] = nothing
    raw = raw_hyperparameters()
    mod = load_user_code()
    M = model_type(mod)
    TRAINING_TYPE[] = M
    defaults = call_user(hyperparameters, M)
    given = given_hyperparameters(raw, defaults)
    hps = with_defaults(given, defaults)
    data = discover_channels()
    resource = something(read_resourceconfig(), Dict{String,Any}())                     # T-05
    dataconf = read_json_file(config_file("inputdataconfig.json"), Dict{String,Any}())
    set_toolkit_env!(toolkit_env(data, Dict(string(k) => v for (k, v) in given), resource, dataconf))
    @info "training $M" hyperparameters = hps channels = channels(data)
    model = call_user(fit, M, data, hps)
    model isa M || throw(UserCodeError(ErrorException("fit returned a $(typeof(model)), expected a $M"), nothing))
    dir = model_dir()
    mkpath(dir)
    call_user(save, model, dir)
    write(joinpath(dir, METADATA_FILE), json(model_metadata(model, data, hps)))
    return model
end

"""
    model_metadata(model, data, hyperparameters) -> NamedTuple

`rosetta.json` (D2): the request columns are the user's `feature_names(model)` if defined; else
the columns of the table user code read (`train`, or the only one read) minus the `target`
hyperparameter's column, when `target` names one of them; else unknown (`null`), with the
user's `n_features(model)` as the width if defined.
"""
function model_metadata(model, data::Data, hps::NamedTuple)
    features = call_user(feature_names, model)
    if features === nothing
        read = tables_read(data)
        table = haskey(read, "train") ? read["train"] : length(read) == 1 ? first(values(read)) : nothing
        target = get(hps, :target, nothing)
        if table !== nothing && target isa Union{AbstractString,Symbol} && String(target) in table.columns
            features = filter(!=(String(target)), table.columns)
        end
    end
    features = features === nothing ? nothing : String[string(f) for f in features]
    nf = features === nothing ? call_user(n_features, model) : length(features)
    return (runtime = "julia", features = features, n_features = nf isa Integer ? Int(nf) : nothing,
            created = string(Dates.format(Dates.now(Dates.UTC), "yyyy-mm-ddTHH:MM:SS"), "Z"))
end

"""
    run_training() -> exit code

One training run with the contract's outcome: 0; 1 with the failure file (reason first, T-17);
143 when stopped by SIGTERM (T-21, after the user's `checkpoint` hook).
"""
function run_training()
    try
        train()
        @info "training complete"
        return 0
    catch e
        bt = catch_backtrace()
        acknowledge_interrupt()
        return disable_sigint() do           # a repeated SIGINT must not cut the stop path short
            kind, msg = failure_reason(e)
            if kind == "Stopped"
                M = TRAINING_TYPE[]
                if M !== nothing
                    try
                        call_user(checkpoint, M, checkpoint_dir())
                    catch err
                        @error "checkpoint hook failed" exception = err
                    end
                end
            end
            inner = e isa UserCodeError ? e.exception : e
            ibt = e isa UserCodeError && e.backtrace !== nothing ? e.backtrace : bt
            write_failure(reason_line(kind, msg), sprint(showerror, inner, ibt))
            kind == "Stopped" ? 143 : 1
        end
    end
end

"Entry point of `train`: exit 0, 1 on failure, 143 when stopped by SIGTERM (T-16, T-17, T-21)."
function train_main()
    Base.exit_on_sigint(false)               # the entrypoint forwards SIGTERM as SIGINT
    # tell the entrypoint SIGINT is now safe to send: one sent earlier (a stop in the first
    # seconds, while julia starts) would be lost or fatal, so the entrypoint holds it until now
    ready = get(ENV, "ROSETTA_SIGINT_READY", "")
    isempty(ready) || touch(ready)
    configure_logging()
    log_system_image()
    code = run_training()
    flush(stdout)
    exit(code)
end

"""
    acknowledge_interrupt()

Tell the entrypoint that julia is on its way out: after a SIGTERM it repeats SIGINT until then,
since one landing while julia compiles can be lost.
"""
function acknowledge_interrupt()
    ack = get(ENV, "ROSETTA_SIGINT_ACK", "")
    isempty(ack) && return nothing
    try
        touch(ack)
    catch err
        @error "cannot acknowledge the stop" exception = err
    end
    return nothing
end

"Log lines on stderr with a timestamp (stdout is for metric lines)."
function configure_logging()
    global_logger(ConsoleLogger(stderr, Logging.Info))
end
