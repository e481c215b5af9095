# The routing table (contract §4, identical in all three runtimes) and its handlers.

"""
    App

Serving state: the loaded model (`nothing` while loading), whether the warm-up ran
(`/ping` says 200 only then, S-07), the row width when known, the body limit and workers.
"""
Base.@kwdef mutable struct App
    model::Any = nothing
    ready::Bool = false
    n_features::Union{Int,Nothing} = nothing
    max_body::Int = max_payload_bytes()
    workers::Int = server_workers()
    custom_input::Bool = false
    custom_output::Bool = false
end

ping(app::App, req::Request) = app.ready ? Response(200, "", UInt8[]) : text_error(503, "model is loading")

"`/execution-parameters` (B-03): W × P capped to ≤ 100 by lowering W."
function execution_parameters(app::App, req::Request)
    p = batch_payload_mb()
    w = env_int("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", app.workers; min = 1)
    w * p > 100 && (w = max(1, 100 ÷ p))
    strategy = get(ENV, "SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD")
    body = json((MaxConcurrentTransforms = w, BatchStrategy = strategy, MaxPayloadInMB = p))
    return Response(200, "application/json", body)
end

"`POST /invocations`: the contract's checks in order (413 is the HTTP layer's), then predict."
function invocations(app::App, req::Request)
    model = app.model
    model === nothing && return text_error(503, "model is loading")
    raw_ct = strip(something(header(req, "content-type"), ""))
    ctype, params = media_type(isempty(raw_ct) ? "text/csv" : raw_ct)   # missing → text/csv
    known = haskey(CODECS, ctype)
    known || app.custom_input ||
        return text_error(415, "unsupported Content-Type '$raw_ct'; accepted: $ACCEPTED_LIST")
    accept = header(req, "accept")
    default = get(ENV, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "")
    default = isempty(default) ? ctype : first(media_type(default))                 # B-06
    chosen = negotiate(accept, default)
    if chosen === nothing || !haskey(CODECS, chosen)
        app.custom_output || return text_error(406, "cannot produce '$(something(accept, default))'; available: $ACCEPTED_LIST")
        chosen = something(accept, default)
    end
    X = app.custom_input ? user_call_or_500(input_fn, model, req.body, ctype) : nothing
    X isa Response && return X
    if X === nothing
        known || return text_error(415, "unsupported Content-Type '$raw_ct'; accepted: $ACCEPTED_LIST")
        try
            X = CODECS[ctype].decode(req.body, app.n_features, params)
        catch e
            e isa BadRequest && return text_error(400, e.msg)
            rethrow()
        end
    end
    preds = user_call_or_500(predict, model, X)
    preds isa Response && return preds
    if app.custom_output
        out = user_call_or_500(output_fn, model, preds, chosen)
        out isa Response && return out
        out === nothing || return Response(200, String(out[2]), out[1] isa AbstractString ? Vector{UInt8}(codeunits(String(out[1]))) : Vector{UInt8}(out[1]))
    end
    recs = try
        records(preds)
    catch e
        @error "predict returned no records" exception = e
        return text_error(500, "model error: predict returned a $(nameof(typeof(preds)))")
    end
    nrec = X isa AbstractMatrix ? size(X, 1) : length(recs)
    length(recs) == nrec ||
        return text_error(500, "model error: predict returned $(length(recs)) records for $nrec rows")
    return Response(200, chosen, CODECS[chosen].encode(recs))
end

"Call user code; an exception is logged (with its backtrace) and becomes a 500 response."
function user_call_or_500(f, args...)
    try
        return call_user(f, args...)
    catch e
        e isa UserCodeError || rethrow()
        @error "model error in $(nameof(f))" exception = (e.exception, e.backtrace)
        return text_error(500, "model error: $(nameof(typeof(e.exception)))")
    end
end

# ONE routing table: path => (allowed methods, handler).
const ROUTES = Dict{String,Tuple{Vector{String},Function}}(
    "/ping" => (["GET", "HEAD"], ping),
    "/invocations" => (["POST"], invocations),
    "/execution-parameters" => (["GET"], execution_parameters),
)

"""
    route(app, req) -> Response

Dispatch through [`ROUTES`](@ref): unknown path → 404 `not found`; a known path with another
method → 405 `method not allowed` with `Allow`.
"""
function route(app::App, req::Request)
    r = get(ROUTES, req.path, nothing)
    r === nothing && return text_error(404, "not found")
    methods, handler = r
    req.method in methods || return text_error(405, "method not allowed"; headers = ["Allow" => join(methods, ", ")])
    return handler(app, req)
end
