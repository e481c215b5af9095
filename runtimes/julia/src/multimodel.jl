# Multi-model mode (D6): SageMaker's "custom containers contract for multi-model endpoints"
# (https://docs.aws.amazon.com/sagemaker/latest/dg/mms-container-apis.html). The Python runtime's
# multimodel.py is the reference; messages and statuses are the golden cases' (multimodel.json).
#
# Julia serves with threads of ONE process, so the registry the workers share is this process's
# `ModelStore` under a lock: a model loaded through one thread is served by all, an unload is
# seen everywhere at once, and a model enters the map only once loaded and warmed up (no request
# sees it half-loaded). Loads run on a worker thread, never on the I/O thread: `/ping` and the
# other models keep answering.

const DEFAULT_LIMIT = 100
const MAX_LIMIT = 1000
const BAD_BODY = "bad request: body must be a JSON object with \"model_name\" and \"url\""
const BAD_LIMIT = "bad request: limit must be an integer from 1 to $MAX_LIMIT"
const BAD_TOKEN = "bad request: invalid next_page_token"

"A loaded model: the url as given, its memory cost in bytes, and the app that serves it."
struct ModelEntry
    name::String
    url::String
    cost::Int
    app::App
end

"""
    ModelStore(settings, M)

The models of a multi-model server (user code loaded once: model type `M`), the loads in
progress (name → reserved bytes) and the memory budget.
"""
mutable struct ModelStore
    settings::ServingSettings
    M::Any
    budget::Int
    models::Dict{String,ModelEntry}
    loading::Dict{String,Int}
    lock::ReentrantLock
end
ModelStore(settings::ServingSettings, M) =
    ModelStore(settings, M, settings.mme_memory_bytes, Dict{String,ModelEntry}(), Dict{String,Int}(), ReentrantLock())

"Bytes taken by the loaded models and reserved by the loads in progress (call with the lock held)."
function used(store::ModelStore)
    total = 0
    for e in values(store.models)
        total += e.cost
    end
    for c in values(store.loading)
        total += c
    end
    return total
end

"An HTTP error answer from deep inside a handler."
struct Refusal <: Exception
    status::Int
    msg::String
end
not_loaded(name) = Refusal(404, "model '$name' is not loaded")

# -- the requests' own syntax -------------------------------------------------------------

"`(model_name, url)` of a `POST /models` body, or a 400 `Refusal` (D6's texts)."
function load_request(body::Vector{UInt8})
    doc = try
        parse_json(body; maxdepth = 64)
    catch
        throw(Refusal(400, BAD_BODY))
    end
    doc isa AbstractDict || throw(Refusal(400, BAD_BODY))
    for key in ("model_name", "url")
        v = get(doc, key, nothing)
        v isa AbstractString && !isempty(v) || throw(Refusal(400, "bad request: missing \"$key\""))
    end
    return String(doc["model_name"]), String(doc["url"])
end

"Percent-decoding (`+` is a space in a query, not in a path)."
function unescape(s::AbstractString; plus::Bool = false)
    out = UInt8[]
    b = codeunits(s)
    i = 1
    while i <= length(b)
        c = b[i]
        if c == UInt8('%') && i + 2 <= length(b) && isxdigit(Char(b[i+1])) && isxdigit(Char(b[i+2]))
            push!(out, parse(UInt8, String(b[i+1:i+2]); base = 16))
            i += 3
            continue
        end
        push!(out, plus && c == UInt8('+') ? UInt8(' ') : c)
        i += 1
    end
    return String(out)
end

"The first value of each parameter of a query string (blank values kept)."
function query_params(target::AbstractString)
    q = findfirst(==('?'), target)
    params = Dict{String,String}()
    q === nothing && return params
    for part in split(target[q+1:end], '&')
        isempty(part) && continue
        kv = split(part, '='; limit = 2)
        k = unescape(kv[1]; plus = true)
        haskey(params, k) || (params[k] = length(kv) == 2 ? unescape(kv[2]; plus = true) : "")
    end
    return params
end

"The `nextPageToken` that resumes a listing at `name`: its unpadded base64url (the same in every runtime)."
page_token(name::AbstractString) = rstrip(replace(replace(base64encode(name), '+' => '-'), '/' => '_'), '=')

"`(limit, first name of the page or nothing)` from `GET /models`'s query, or a 400 `Refusal`."
function listing_request(target::AbstractString)
    params = query_params(target)
    raw = get(params, "limit", "")
    limit = DEFAULT_LIMIT
    if !isempty(raw)
        ok = all(c -> '0' <= c <= '9', raw) && (v = tryparse(Int, raw); v !== nothing && 1 <= v <= MAX_LIMIT)
        ok || throw(Refusal(400, BAD_LIMIT))
        limit = parse(Int, raw)
    end
    token = get(params, "next_page_token", "")
    isempty(token) && return limit, nothing
    (all(c -> isascii(c) && (isletter(c) || isdigit(c) || c in "-_"), token) && length(token) % 4 != 1) ||
        throw(Refusal(400, BAD_TOKEN))
    std = replace(replace(token, '-' => '+'), '_' => '/') * "="^(mod(-length(token), 4))
    bytes = try
        base64decode(std)
    catch
        throw(Refusal(400, BAD_TOKEN))
    end
    isvalid(String, bytes) || throw(Refusal(400, BAD_TOKEN))
    return limit, String(bytes)
end

# -- memory -------------------------------------------------------------------------------

"The apparent size of a model folder: the byte sizes of its regular files, recursively."
function folder_size(dir::AbstractString)
    total = 0
    for (root, _, files) in walkdir(dir; onerror = _ -> nothing)
        for f in files
            st = lstat(joinpath(root, f))
            isfile(st) && (total += st.size)
        end
    end
    return total
end

"Bytes the garbage collector holds live (after a young-generation collection)."
live_bytes() = (GC.gc(false); Int(Base.gc_live_bytes()))

# -- load / unload / read ----------------------------------------------------------------

"""
    load!(store, name, url) -> ModelEntry

Load `url` as `name`: the user's `load` and a warm-up prediction, then registered. 404 (no
folder), 409 (taken), 507 (over the budget, checked before and after loading), 500 (it fails
to load) as a `Refusal`; after any failure the name is free again.
"""
function load!(store::ModelStore, name::String, url::String)
    isdir(url) || throw(Refusal(404, "no model at '$url'"))
    size = folder_size(url)
    lock(store.lock) do
        (haskey(store.models, name) || haskey(store.loading, name)) && throw(Refusal(409, "model '$name' is already loaded"))
        if used(store) + size > store.budget
            @warn "model '$name' ($size bytes on disk) does not fit: $(used(store)) of $(store.budget) bytes used"
            throw(Refusal(507, "not enough memory to load model '$name'"))
        end
        store.loading[name] = size
    end
    t0 = time()
    app = App(store.settings)
    growth = 0
    try
        before = live_bytes()
        load_from!(app, store.M, url)
        warm_up_inline(app)
        growth = max(0, live_bytes() - before)
    catch e
        lock(() -> delete!(store.loading, name), store.lock)
        e isa InterruptException && rethrow()
        inner = e isa UserCodeError ? e.exception : e
        @warn "model '$name' failed to load from $url" exception = inner
        throw(Refusal(500, "cannot load model '$name': $(error_message(e))"))
    end
    app.ready = true
    entry = ModelEntry(name, url, max(size, growth), app)
    fits = lock(store.lock) do
        delete!(store.loading, name)
        ok = used(store) + entry.cost <= store.budget
        ok && (store.models[name] = entry)
        ok
    end
    if !fits
        @warn "model '$name' took $(entry.cost) bytes once loaded: over the budget of $(store.budget)"
        throw(Refusal(507, "not enough memory to load model '$name'"))
    end
    @info "model '$name' loaded from $url in $(round(time() - t0; digits = 2)) s (cost $(round(entry.cost / MIB; digits = 1)) MiB)"
    return entry
end

"One prediction of a row of zeros, in-process, so the model's first request is not its compile (errors ignored)."
function warm_up_inline(app::App)
    nf = app.n_features
    nf === nothing && return nothing
    req = Request("POST", "/invocations", "/invocations", "HTTP/1.1", ["content-type" => "text/csv"],
                  Vector{UInt8}(codeunits(join(fill("0", nf), ",") * "\n")), true)
    with_logger(NullLogger()) do
        try
            invoke_model(app, req)
        catch e
            e isa InterruptException && rethrow()
        end
    end
    return nothing
end

function unload!(store::ModelStore, name::String)
    entry = lock(store.lock) do
        e = pop!(store.models, name, nothing)
        e === nothing && throw(not_loaded(name))
        e
    end
    @info "model '$name' unloaded"
    return entry
end

function entry(store::ModelStore, name::String)
    e = lock(() -> get(store.models, name, nothing), store.lock)
    e === nothing && throw(not_loaded(name))
    return e
end

"One page sorted by name (code points) from the first name ≥ `start`, and the first name of the next page."
function listing(store::ModelStore, limit::Int, start)
    entries = lock(() -> collect(values(store.models)), store.lock)
    sort!(entries; by = e -> e.name)
    i = start === nothing ? 1 : searchsortedfirst([e.name for e in entries], start)
    page = entries[i:min(end, i + limit - 1)]
    following = i + limit <= length(entries) ? entries[i+limit].name : nothing
    return page, following
end

# -- routes --------------------------------------------------------------------------------

describe(e::ModelEntry) = (modelName = e.name, modelUrl = e.url)
json_response(x) = Response(200, "application/json", json(x))

"""
    route_models(store, req) -> Response

`/models` (GET list, POST load), `/models/<name>` (GET, DELETE), `/models/<name>/invoke` (POST);
`<name>` is one percent-decoded path segment; another method → 405; another path → 404.
"""
function route_models(store::ModelStore, req::Request)
    path = req.path
    if path == "/models"
        kind, name = :list, ""
    elseif startswith(path, "/models/")
        parts = split(path[9:end], '/')
        (isempty(parts[1]) || length(parts) > 2 || (length(parts) == 2 && parts[2] != "invoke")) &&
            return text_error(404, "not found")
        kind, name = length(parts) == 1 ? :one : :invoke, unescape(parts[1])
    else
        return text_error(404, "not found")
    end
    allowed = kind === :list ? ["GET", "POST"] : kind === :one ? ["GET", "DELETE"] : ["POST"]
    req.method in allowed || return text_error(405, "method not allowed"; headers = ["Allow" => join(allowed, ", ")])
    try
        if kind === :list && req.method == "GET"
            limit, start = listing_request(req.target)
            page, following = listing(store, limit, start)
            models = [describe(e) for e in page]
            return json_response(following === nothing ? (models = models,) :
                                 (models = models, nextPageToken = page_token(following)))
        elseif kind === :list
            return json_response(describe(load!(store, load_request(req.body)...)))
        elseif kind === :one && req.method == "GET"
            return json_response(describe(entry(store, name)))
        elseif kind === :one
            return json_response((modelName = unload!(store, name).name,))
        else
            return invoke_model(entry(store, name).app, req)
        end
    catch e
        e isa Refusal && return text_error(e.status, e.msg)
        rethrow()
    end
end
