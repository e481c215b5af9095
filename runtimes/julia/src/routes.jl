# The routing table (contract §4, identical in all three runtimes) and its handlers.

"""
    App(settings = ServingSettings(); model = nothing, ready = false, features = nothing,
        n_features = nothing, custom_input = false, custom_output = false)

Serving state: the settings (read once at start), the loaded model (`nothing` while loading),
whether the warm-up ran (`/ping` says 200 only then, S-07), the request columns when known
(D2), whether the user defines `input_fn` / `output_fn` (D3), and what the decoders need,
derived once from all that.
"""
mutable struct App
    settings::ServingSettings
    model::Any
    ready::Bool
    features::Union{Vector{String},Nothing}
    n_features::Union{Int,Nothing}
    custom_input::Bool
    custom_output::Bool
    options::DecodeOptions
    rowwise::Bool                 # the user declared `rowwise(::Type{M}) = true` (D9)
    batcher::Batcher
    models::Any                   # multi-model mode (D6): the ModelStore; `nothing` otherwise
end
function App(settings::ServingSettings = ServingSettings(); model = nothing, ready::Bool = false,
             features = nothing, n_features = nothing, custom_input::Bool = false, custom_output::Bool = false,
             rowwise::Bool = false)
    app = App(settings, model, ready, features, n_features, custom_input, custom_output, DecodeOptions(),
              rowwise, Batcher(), nothing)
    return configure!(app)
end

"Whether this app's predictions go through its batcher (D9): a row-wise model, the built-in decoders, not switched off."
batching_on(app::App) = app.settings.batching && app.rowwise && !app.custom_input

"Derive the decoders' options from the app's settings and columns (after any change to them)."
function configure!(app::App)
    app.features !== nothing && (app.n_features = length(app.features))
    app.options = DecodeOptions(app.n_features, app.features, app.settings.csv_header)
    return app
end

const MULTI_MODEL_ONLY = "multi-model mode: invoke POST /models/<name>/invoke"

ping(app::App, req::Request) = app.ready ? Response(200, "", UInt8[]) : text_error(503, "model is loading")

"`/execution-parameters` (B-03): W × P capped to ≤ 100 by lowering W."
function execution_parameters(app::App, req::Request)
    s = app.settings
    p = s.batch_payload_mb
    w = s.max_concurrent_transforms
    w * p > 100 && (w = max(1, 100 ÷ p))
    body = json((MaxConcurrentTransforms = w, BatchStrategy = s.batch_strategy, MaxPayloadInMB = p))
    return Response(200, "application/json", body)
end

unsupported(raw_ct) = text_error(415, "unsupported Content-Type '$raw_ct'; accepted: $ACCEPTED_LIST")
not_acceptable(what) = text_error(406, "cannot produce '$what'; available: $ACCEPTED_LIST")

"""
`POST /invocations`: the contract's checks in order (D3): 413 (the HTTP layer's) → 415 → 406 →
decode (400) → predict (500) → one output per record (500) → encode. With a user `input_fn`
any Content-Type reaches it; with a user `output_fn` the preferred Accept type reaches it, and
the 406 waits until it declined.
"""
function invocations(app::App, req::Request)
    app.models === nothing || return text_error(404, MULTI_MODEL_ONLY)
    return invoke_model(app, req)
end

"`/invocations` semantics for the model of `app` (also `POST /models/<name>/invoke`, D6)."
function invoke_model(app::App, req::Request)
    model = app.model
    model === nothing && return text_error(503, "model is loading")
    raw_ct = strip(something(header(req, "content-type"), ""))
    ctype, params = media_type(isempty(raw_ct) ? "text/csv" : raw_ct)   # missing → text/csv
    known = haskey(CODECS, ctype)
    known || app.custom_input || return unsupported(raw_ct)
    accept = header(req, "accept")
    default = default_accept(app.settings.default_accept, ctype, app.custom_output)      # B-06
    chosen = negotiate(accept, default)
    chosen === nothing || haskey(CODECS, chosen) || (chosen = nothing)
    wanted = app.custom_output ? preferred(accept, default) : chosen
    asked = accept === nothing || isempty(strip(accept)) ? default : accept
    wanted === nothing && return not_acceptable(asked)
    X = nothing
    if app.custom_input
        X = try
            call_user(input_fn, model, req.body, ctype)
        catch e
            e isa InterruptException && rethrow()
            e isa BadRequest && return text_error(400, e.msg)
            @warn "input_fn refused the payload" exception = (e isa UserCodeError ? e.exception : e)
            return text_error(400, "cannot decode payload: $(error_message(e))")
        end
    end
    if X === nothing
        known || return unsupported(raw_ct)
        try
            X = CODECS[ctype].decode(req.body, app.options, params)
        catch e
            e isa BadRequest && return text_error(400, e.msg)
            rethrow()
        end
    end
    preds = batching_on(app) && X isa Matrix{Float64} ?
        predict_batched(app.batcher, model, X, app.settings.batch_max_rows, app.settings.batch_wait_ms) :
        user_call_or_500(predict, model, X)
    preds isa Response && return preds
    if X isa AbstractMatrix                  # B-08: one output record per input record
        nout, nin = nresults(preds), size(X, 1)
        nout === nothing && return model_error("predict returned a $(nameof(typeof(preds))); expected a vector or a matrix")
        nout == nin || return model_error("predict returned $nout results for $nin records")
    end
    if app.custom_output
        out = user_call_or_500(output_fn, model, preds, wanted)
        out isa Response && return out
        out === nothing || return custom_response(out)
        chosen === nothing && return not_acceptable(asked)
    end
    recs = try
        records(preds)
    catch e
        e isa ArgumentError || rethrow()
        return model_error("predict returned a $(nameof(typeof(preds))); expected a vector or a matrix")
    end
    return Response(200, chosen, CODECS[chosen].encode(recs))
end

"A user `output_fn` result `(body, content_type)` as the response (anything else is a model error)."
function custom_response(out)
    out isa Tuple && length(out) == 2 && out[1] isa Union{AbstractString,AbstractVector{UInt8}} &&
        out[2] isa AbstractString ||
        return model_error("output_fn returned a $(nameof(typeof(out))); expected (body, content_type)")
    body, ctype = out
    bytes = body isa AbstractString ? Vector{UInt8}(codeunits(String(body))) : Vector{UInt8}(body)
    return Response(200, String(ctype), bytes)
end

"A 500 `model error: …` (logged: the operator sees it in the logs too)."
function model_error(msg::AbstractString)
    @error "model error: $msg"
    return text_error(500, "model error: $msg")
end

"""
Call user code; an exception is logged (with its backtrace) and becomes a 500 `model error:
<message>` (D3); a `BadRequest` the user code throws is a 400 with its message.
"""
function user_call_or_500(f, args...)
    try
        return call_user(f, args...)
    catch e
        e isa InterruptException && rethrow()
        e isa BadRequest && return text_error(400, e.msg)
        inner, bt = e isa UserCodeError ? (e.exception, e.backtrace) : (e, catch_backtrace())
        @error "model error in $(nameof(f))" exception = (inner, bt)
        return text_error(500, "model error: $(error_message(e))")
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
    r === nothing && app.models !== nothing && return route_models(app.models, req)
    r === nothing && return text_error(404, "not found")
    methods, handler = r
    req.method in methods || return text_error(405, "method not allowed"; headers = ["Allow" => join(methods, ", ")])
    return handler(app, req)
end
