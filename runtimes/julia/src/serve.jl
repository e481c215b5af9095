# The serving entry (`IMAGE serve`, contract §4): listen first (/ping says 503 while
# loading), load the model, warm the JIT up with real requests over loopback, then /ping 200.

"""
    load_model!(app)

Load user code and the model from `model_dir()` (read-only is fine, S-02), then the request
columns (D2): the user's `feature_names(model)`, else `rosetta.json`'s `features`, else a
width from the user's `n_features(model)` or `rosetta.json`. Any failure throws: the serve
entry logs it and exits non-zero (never 503 forever).
"""
function load_model!(app::App)
    dir = model_dir()
    isdir(dir) || throw(ModelError("model directory $dir does not exist"))
    jls = joinpath(dir, "model.jls")     # fail fast, before compiling user code (default load only)
    isfile(jls) && !defines_load(program_path()) && check_model_file(jls)
    mod = load_user_code()
    M = model_type(mod)
    load_from!(app, M, dir)
    @info "model loaded" type = M features = app.features n_features = app.n_features
    return app
end

"""
    load_from!(app, M, dir)

The user's `load(M, dir)`, then the request columns (D2) and which hooks exist, into `app`
(the model is set last: a request never sees a half-loaded app). Single- and multi-model mode.
"""
function load_from!(app::App, M, dir::AbstractString)
    model = call_user(load, M, dir)
    meta = read_json_file(joinpath(dir, METADATA_FILE), Dict{String,Any}())
    meta isa AbstractDict || (meta = Dict{String,Any}())
    features = call_user(feature_names, model)
    features === nothing && (features = get(meta, "features", nothing))
    nf = features === nothing ? call_user(n_features, model) : length(features)
    nf === nothing && (nf = get(meta, "n_features", nothing))
    app.features = features isa AbstractVector ? String[string(f) for f in features] : nothing
    app.n_features = nf isa Integer ? Int(nf) : nothing
    app.custom_input = defines(input_fn, (M, Any, Any))
    app.custom_output = defines(output_fn, (M, Any, Any))
    app.rowwise = call_user(rowwise, M) === true
    configure!(app)
    app.model = model
    return app
end

"One request over loopback (Connection: close); the response's status code."
function self_request(port::Integer, method, path, body = "", headers = Pair{String,String}[])
    sock = connect(ip"127.0.0.1", port)
    try
        io = IOBuffer()
        print(io, method, " ", path, " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n")
        for (k, v) in headers
            print(io, k, ": ", v, "\r\n")
        end
        print(io, "Content-Length: ", sizeof(body), "\r\n\r\n", body)
        write(sock, take!(io))
        resp = String(read(sock))
        m = match(r"^HTTP/1\.[01] (\d{3})", resp)
        return m === nothing ? 0 : parse(Int, m.captures[1])
    finally
        close(sock)
    end
end

"""
    warm_up_routes(port)

The model-independent part of the warm-up (routing, errors, /execution-parameters, every
codec's decoder via 400s); runs while the model loads (the JIT is then busy for both).
"""
function warm_up_routes(port::Integer)
    try
        self_request(port, "GET", "/ping")
        self_request(port, "GET", "/execution-parameters")
        self_request(port, "GET", "/nowhere")
        self_request(port, "POST", "/invocations", "x", ["Content-Type" => "image/png"])
    catch e                                  # only a slower first request: never fatal
        @warn "warm-up of the routes failed" exception = e
    end
    return nothing
end

"""
    warm_up(app, port)

Compile the prediction path before `/ping` says 200: parse, route, decode, predict and
encode in every codec, through the real socket (without it the first request takes ~300 ms).
"""
function warm_up(app::App, port::Integer)
    nf = app.n_features
    if nf === nothing
        @warn "warm-up without a prediction: n_features(model) is unknown"
        return
    end
    row = join(fill("0", nf), ",")
    for (ct, body) in (("text/csv", row * "\n"), ("application/json", "[[$row]]"), ("application/jsonlines", "[$row]\n"))
        for accept in ("text/csv", "application/json", "application/jsonlines")
            st = self_request(port, "POST", "/invocations", body, ["Content-Type" => ct, "Accept" => accept])
            st == 200 || @warn "warm-up request $ct → $accept answered $st"
        end
    end
    self_request(port, "POST", "/invocations", "a,b\n", ["Content-Type" => "text/csv"])
    return nothing
end

"""
    keep_memory(limit_mb; every = 0.5)

Collect garbage (`GC.gc(false)`, the young generation) whenever `limit_mb` MiB were allocated since
the last collection, checked every `every` s. Julia's own collector lets its interval grow towards
~1.2 GB after collections that free little, so a server that saw varied traffic held 800-950 MB
of garbage (PSS) where 300-450 MB is live: measured with `bench/reliability.py`'s payloads.
`ROSETTA_GC_MB=0` leaves it all to Julia.
"""
function keep_memory(limit_mb::Integer; every::Real = 0.5)
    limit_mb > 0 || return nothing
    limit = Int64(limit_mb) * 1024 * 1024
    last = allocated_bytes()
    @async while true
        sleep(every)
        if allocated_bytes() - last > limit
            GC.gc(false)
            last = allocated_bytes()
        end
    end
    return nothing
end

"Bytes allocated since start (the `Ref` form of `Base.gc_bytes` exists from Julia 1.4 to current)."
allocated_bytes() = (b = Ref{Int64}(0); Base.gc_bytes(b); b[])

"""
    serve(settings = ServingSettings(); host = IPv4(0)) -> exit code

Run the server until a shutdown is requested (SIGTERM), then drain (S-13). The settings are
read from the environment once, here.
"""
function serve(settings::ServingSettings = ServingSettings(); host = IPv4(0))
    app = App(settings)
    server = start_server(req -> route(app, req); host = host, port = settings.port,
                          limits = Limits(max_body = max_body_bytes(settings)), threaded = Threads.nthreads() > 1)
    watch_control(server)                    # SIGTERM arrives as "stop" on stdin (entrypoint)
    @info "listening on $(host):$(server.port) with $(Threads.nthreads()) thread(s)"
    try
        t0 = time()
        if settings.multi_model
            # D6: no model at start; the user's code is loaded once, models come through /models
            app.models = on_worker(() -> ModelStore(settings, model_type(load_user_code())))
            @info "multi-model mode: memory budget $(round(settings.mme_memory_bytes / MIB; digits = 1)) MiB"
            warm_up_routes(server.port)
        else
            routes = @async warm_up_routes(server.port)       # concurrently with loading
            on_worker(() -> load_model!(app))                  # off the I/O thread: /ping answers 503
            wait(routes)
            warm_up(app, server.port)
            @info "batching $(batching_on(app) ? "on" : "off")" rowwise = app.rowwise max_rows = settings.batch_max_rows wait_ms = settings.batch_wait_ms
        end
        @info "model loaded and warmed up" seconds = round(time() - t0; digits = 2)
        app.ready = true
        keep_memory(settings.gc_mb)
        @info "ready"
        wait_for_shutdown(server)
    catch e
        if !(e isa InterruptException)
            stop!(server; timeout = 1)
            rethrow()
        end
    end
    @info "stopping: draining in-flight requests"
    drained = stop!(server; timeout = 25)
    @info drained ? "stopped" : "stopped with requests still in flight"
    return 0
end

"Entry point of `serve`."
function serve_main()
    Base.exit_on_sigint(false)               # the entrypoint forwards SIGTERM as SIGINT
    configure_logging()
    log_system_image()
    code = try
        serve()
    catch e
        inner = e isa UserCodeError ? e.exception : e
        bt = e isa UserCodeError && e.backtrace !== nothing ? e.backtrace : catch_backtrace()
        if inner isa ModelError                # a clear reason; no backtrace to compile and print
            @error "cannot serve: $(inner.msg)"
        else
            @error "cannot serve: $(exception_line(inner))" exception = (inner, bt)
        end
        1
    end
    flush(stdout); flush(stderr)
    exit(code)
end

"""
    log_system_image()

Say at start-up whether julia runs on Rosetta's system image (built with the image, start-up
time) or on julia's own one (the build fell back, or `ROSETTA_SYSIMAGE=off`).
"""
function log_system_image()
    image = unsafe_string(Base.JLOptions().image_file)
    if occursin("rosetta", basename(image))
        @info "system image: $image (Rosetta's, compiled at image build)"
    else
        @info "system image: $image (julia's own: Rosetta's is not built or not used; start-up compiles more)"
    end
end
