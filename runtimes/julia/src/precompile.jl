# Start-up time (S-07 cold start): while the package is precompiled (at image build), run
# the serving path once in-process, so the inferred code of Rosetta's request path is in
# the package cache and `serve` does not infer it again before the first /ping 200.
# (Julia 1.5 caches inferred code, not machine code: the warm-up in serve.jl still compiles.)

"A model type for the precompile workload only (never a user's model)."
struct PrecompileModel end

"""
    precompile_workload()

Requests over loopback to an in-process server (every route, codec pair and error path),
then the codecs directly for the usual prediction types. Runs only while precompiling.
"""
function precompile_workload()
    app = App(model = PrecompileModel(), n_features = 4, ready = true)
    server = start_server(req -> route(app, req); host = ip"127.0.0.1", port = 0, threaded = false)
    try
        port = server.port
        self_request(port, "GET", "/ping")
        self_request(port, "HEAD", "/ping")
        self_request(port, "GET", "/execution-parameters")
        self_request(port, "GET", "/nowhere")
        self_request(port, "DELETE", "/ping")
        self_request(port, "POST", "/invocations", "x", ["Content-Type" => "image/png"])
        bodies = ("1,2,3,4\n", "[[1,2,3,4]]", "[1,2,3,4]\n")
        for (ct, body) in zip(CODEC_TYPES, bodies), accept in CODEC_TYPES   # no predict method: 500
            self_request(port, "POST", "/invocations", body, ["Content-Type" => ct, "Accept" => accept])
            self_request(port, "POST", "/invocations", "a,b", ["Content-Type" => ct])          # 400
        end
        self_request(port, "POST", "/invocations", "1,2,3,4\n", ["Content-Type" => "text/csv", "Accept" => "x/y"])
    finally
        stop!(server; timeout = 1)
    end
    # multi-model routes (D6) that need no model: listing, 400s, 404s
    mm = App(ServingSettings(Dict("SAGEMAKER_MULTI_MODEL" => "true", "ROSETTA_MME_MEMORY_MB" => "0")); ready = true)
    mm.models = ModelStore(mm.settings, PrecompileModel)
    for (method, target, body) in (("GET", "/models", ""), ("GET", "/models?limit=2&next_page_token=Yw", ""),
                                   ("POST", "/models", "{}"), ("POST", "/models", "{\"model_name\": \"m\", \"url\": \"/nowhere\"}"),
                                   ("GET", "/models/m", ""), ("DELETE", "/models/m", ""), ("POST", "/models/m/invoke", "1\n"),
                                   ("POST", "/invocations", "1\n"), ("PUT", "/models", ""))
        q = findfirst(==('?'), target)
        path = q === nothing ? target : target[1:q-1]
        route(mm, Request(method, target, path, "HTTP/1.1", ["content-type" => "text/csv"],
                          Vector{UInt8}(codeunits(body)), true))
    end
    params = Dict{String,String}()
    for opts in (DecodeOptions(4, nothing, false), DecodeOptions(), DecodeOptions(4, ["a", "b", "c", "d"], true))
        decode_csv(Vector{UInt8}("1,2,3,4\n5,6,7,8"), opts, params)
        decode_csv(Vector{UInt8}("a,b,c,d\n5,6,7,8"), opts, Dict("header" => "present"))
        decode_json(Vector{UInt8}("[[1,2,3,4]]"), opts, params)
        decode_json(Vector{UInt8}("{\"instances\": [[1,2,3,4]]}"), opts, params)
        decode_jsonlines(Vector{UInt8}("[1,2,3,4]\n"), opts, params)
    end
    for preds in (["a", "b"], [1.5, 2.5], [1, 2], [1.0 2.0; 3.0 4.0], [1 2; 3 4], Any["a", 1])
        recs = records(preds)
        encode_csv(recs); encode_json(recs); encode_jsonlines(recs)
    end
    parse_json("{\"a\": [1, 2.5, \"x\", true, null]}")
    return nothing
end

if ccall(:jl_generating_output, Cint, ()) == 1
    with_logger(NullLogger()) do                         # the expected 500s log errors
        precompile_workload()
    end
    precompile(serve_main, ())
    precompile(train_main, ())
    precompile(run_training, ())
    precompile(handle_connection, (Server, Conn{Sockets.TCPSocket}))
    precompile(accept_loop, (Server,))
    precompile(load_model!, (App,))
    precompile(on_worker, (Function,))
    precompile(predict_batched, (Batcher, Any, Matrix{Float64}, Int, Int))
    precompile(log_system_image, ())
    precompile(warm_up, (App, Int))
    precompile(warm_up_routes, (Int,))
    precompile(load_user_code, (String,))
    precompile(model_type, (Module,))
    precompile(configure_logging, ())
end
