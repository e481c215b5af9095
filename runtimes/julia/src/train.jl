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

"The environment the SageMaker training toolkit sets for user code (E-01..E-11)."
function set_toolkit_env!(data::Data, raw_hps::AbstractDict, hps::NamedTuple)
    resource = read_json_file(config_file("resourceconfig.json"), Dict{String,Any}())   # T-05
    dataconf = read_json_file(config_file("inputdataconfig.json"), Dict{String,Any}())
    hosts = get(resource, "hosts", Any[])
    decoded = Dict{String,Any}(String(k) => decode_value(v) for (k, v) in raw_hps)
    ENV["SM_MODEL_DIR"] = model_dir()
    ENV["SM_CHANNELS"] = json(channels(data))
    for ch in channels(data)
        ENV["SM_CHANNEL_" * uppercase(ch)] = datapath(data, ch)
    end
    ENV["SM_HPS"] = json(decoded)
    for (k, v) in decoded
        ENV["SM_HP_" * uppercase(k)] = v isa AbstractString ? v : json(v)
    end
    ENV["SM_OUTPUT_DATA_DIR"] = output_data_dir()
    ENV["SM_OUTPUT_DIR"] = output_dir()
    ENV["SM_INPUT_DIR"] = input_dir()
    ENV["SM_INPUT_CONFIG_DIR"] = config_dir()
    ENV["SM_NUM_CPUS"] = string(Sys.CPU_THREADS)
    ENV["SM_NUM_GPUS"] = "0"
    ENV["SM_HOSTS"] = json(hosts)
    ENV["SM_CURRENT_HOST"] = string(get(resource, "current_host", ""))
    ENV["SM_NETWORK_INTERFACE_NAME"] = string(get(resource, "network_interface_name", "eth0"))
    ENV["SM_RESOURCE_CONFIG"] = json(resource)
    ENV["SM_INPUT_DATA_CONFIG"] = json(dataconf)
    return nothing
end

# The model type, once known: the SIGTERM path calls its checkpoint hook (T-13, T-21).
const TRAINING_TYPE = Ref{Any}(nothing)

"""
    train() -> model

One training run; throws on failure (see [`train_main`](@ref) for the failure file).
"""
function train()
    raw = raw_hyperparameters()
    mod = load_user_code()
    M = model_type(mod)
    TRAINING_TYPE[] = M
    hps = decode_hyperparameters(raw, call_user(hyperparameters, M))
    data = discover_channels()
    set_toolkit_env!(data, raw, hps)
    @info "training $M" hyperparameters = hps channels = channels(data)
    model = call_user(fit, M, data, hps)
    model isa M || throw(UserCodeError(ErrorException("fit returned a $(typeof(model)), expected a $M"), nothing))
    dir = model_dir()
    mkpath(dir)
    call_user(save, model, dir)
    nf = call_user(n_features, model)
    meta = (runtime = "julia", n_features = nf, created = string(Dates.now(Dates.UTC), "Z"))
    write(joinpath(dir, "rosetta.json"), json(meta))
    return model
end

"""
    failure_reason(e) -> (kind, message)

Classify a training failure into the contract's kinds (§3.6).
"""
function failure_reason(e)
    # a SIGTERM landing while `include` loads the user's file arrives wrapped (UserCodeError of
    # a LoadError): it is still a stop, not a user-code failure
    root_exception(e) isa InterruptException && return ("Stopped", "received SIGTERM")
    e isa HyperparameterError && return ("HyperparameterError", e.msg)
    e isa DataError && return ("DataError", e.msg)
    if e isa UserCodeError
        inner = e.exception
        inner isa OutOfMemoryError && return ("MemoryError", "out of memory")
        return ("UserCodeError", exception_line(inner))
    end
    e isa OutOfMemoryError && return ("MemoryError", "out of memory")
    return ("UserCodeError", exception_line(e))
end

"The exception behind the wrappers `UserCodeError` and `LoadError` (from `include`)."
function root_exception(e)
    while true
        if e isa UserCodeError
            e = e.exception
        elseif e isa LoadError
            e = e.error
        else
            return e
        end
    end
end

"Write the failure file: the reason first, a blank line, then the details (T-17)."
function write_failure(reason::AbstractString, details::AbstractString)
    try
        mkpath(output_dir())
        write(failure_file(), string(reason, "\n\n", details, "\n"))
    catch e
        @error "cannot write the failure file" exception = e
    end
    println(stderr, reason)
    flush(stderr)
end

"Entry point of `train`: exit 0, 1 on failure, 143 when stopped by SIGTERM (T-16, T-17, T-21)."
function train_main()
    Base.exit_on_sigint(false)               # the entrypoint forwards SIGTERM as SIGINT
    # tell the entrypoint SIGINT is now safe to send: one sent earlier (a stop in the first
    # seconds, while julia starts) would be lost or fatal, so the entrypoint holds it until now
    ready = get(ENV, "ROSETTA_SIGINT_READY", "")
    isempty(ready) || touch(ready)
    configure_logging()
    code = try
        train()
        @info "training complete"
        0
    catch e
        bt = catch_backtrace()
        acknowledge_interrupt()
        disable_sigint() do                  # a repeated SIGINT must not cut the stop path short
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
            write_failure("$kind: $msg", sprint(showerror, inner, ibt))
            kind == "Stopped" ? 143 : 1
        end
    end
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
