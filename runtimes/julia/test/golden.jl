# The golden cases (conformance/golden/README.md) run against this runtime in-process: every
# training case through `run_training` on a temporary /opt/ml, every serving case through
# `route` with a `ServingSettings` built from the case's env. A case listed in
# conformance/golden/expected-differences/julia.json is an expected failure (`@test_broken`,
# so it turns into an error the day it passes); every listed case needs a reason.
#
# Where the cases are: ROSETTA_GOLDEN_DIR, else ../../../conformance/golden from this file (a
# checkout), else /rosetta-golden (the image test mounts conformance/golden there).
using Test, Logging, Base64, Sockets
using Rosetta
const RG = Rosetta

function golden_dir()
    for d in (get(ENV, "ROSETTA_GOLDEN_DIR", ""), joinpath(@__DIR__, "..", "..", "..", "conformance", "golden"),
              "/rosetta-golden")
        !isempty(d) && isfile(joinpath(d, "README.md")) && return normpath(d)
    end
    return nothing
end

read_golden(path) = RG.parse_json(read(path, String); maxdepth = 1000)

# ---------------------------------------------------------------------------------------
# Comparison: numbers numerically (relative tolerance 1e-9), everything else exactly.

isnum(x) = x isa Real && !(x isa Bool)
function same(a, b)
    isnum(a) && isnum(b) && return isapprox(Float64(a), Float64(b); rtol = 1e-9, atol = 0.0)
    if a isa AbstractVector && b isa AbstractVector
        return length(a) == length(b) && all(same(x, y) for (x, y) in zip(a, b))
    elseif a isa AbstractDict && b isa AbstractDict
        return Set(keys(a)) == Set(keys(b)) && all(same(a[k], b[k]) for k in keys(a))
    end
    return typeof(a) == typeof(b) && a == b || (a isa AbstractString && b isa AbstractString && a == b)
end
show_value(x) = RG.json(x)

"The fields of a CSV output line: numbers where they parse, else the text."
csv_value(s) = (v = tryparse(Float64, strip(s)); v === nothing ? String(s) : v)
as_record(x) = x isa AbstractVector ? x : Any[x]

"""
    output_records(media, body) -> Vector

The records of a response body (README: CSV one per line, fields split on `,`; JSON
`{"predictions": [...]}`; JSON Lines one value per line); a scalar record as a 1-element list.
"""
function output_records(media::AbstractString, body::AbstractString)
    if media == "text/csv"
        return [Any[csv_value(f) for f in split(l, ',')] for l in split(body, '\n') if !isempty(strip(l))]
    elseif media == "application/json"
        v = RG.parse_json(body; maxdepth = 1000)
        return [as_record(x) for x in v["predictions"]]
    elseif media == "application/jsonlines"
        return [as_record(RG.parse_json(l; maxdepth = 1000)) for l in split(body, '\n') if !isempty(strip(l))]
    end
    error("no records in a '$media' response")
end

# ---------------------------------------------------------------------------------------
# Training a fixture on a temporary /opt/ml

"Write `text` (a string, or a JSON value written as JSON) to `path`."
write_text(path, text) = (mkpath(dirname(path)); write(path, text isa AbstractString ? text : RG.json(text)))

"The single-host resourceconfig.json a training case gets when it gives none (README)."
const SINGLE_HOST = Dict{String,Any}("current_host" => "algo-1", "hosts" => ["algo-1"], "network_interface_name" => "eth0")

"Every `{ml}` in the strings of a JSON value replaced by `root` (checkpointconfig.json, D8)."
with_ml(x::AbstractString, root) = replace(x, "{ml}" => root)
with_ml(x::AbstractDict, root) = Dict{String,Any}(k => with_ml(v, root) for (k, v) in x)
with_ml(x::AbstractVector, root) = Any[with_ml(v, root) for v in x]
with_ml(x, root) = x

"""
    training_root(spec) -> root

A temporary /opt/ml for a training spec (the README's training-case fields: `hyperparameters`,
`channels`, optional `inputdataconfig`, `resourceconfig` (`null`: no file), `checkpointconfig`).
"""
function training_root(spec::AbstractDict)
    root = mktempdir()
    cfg = joinpath(root, "input", "config")
    mkpath(cfg)
    write_text(joinpath(cfg, "hyperparameters.json"), get(spec, "hyperparameters", Dict{String,Any}()))
    chans = get(spec, "channels", Dict{String,Any}())
    for (ch, files) in chans
        dir = joinpath(root, "input", "data", ch)
        mkpath(dir)
        for (rel, text) in files
            write_text(joinpath(dir, rel), text)
        end
    end
    default_config = Dict{String,Any}(ch => Dict{String,Any}("ContentType" => "text/csv", "TrainingInputMode" => "File",
                                                              "S3DistributionType" => "FullyReplicated",
                                                              "RecordWrapperType" => "None") for ch in keys(chans))
    write_text(joinpath(cfg, "inputdataconfig.json"), get(spec, "inputdataconfig", default_config))
    resource = get(spec, "resourceconfig", SINGLE_HOST)
    resource === nothing || write_text(joinpath(cfg, "resourceconfig.json"), resource)
    haskey(spec, "checkpointconfig") &&
        write_text(joinpath(cfg, "checkpointconfig.json"), with_ml(spec["checkpointconfig"], root))
    return root
end

"`train` once on `root` (`run_training`, logging off): the exit code."
train_in(root, models, program) = with_fixture_env(root, models, program) do
    with_logger(RG.run_training, NullLogger())   # the failure reason still echoes on stderr
end

"""
    train_fixture(models, spec) -> (root, exit code)

A training spec trained once on a fresh /opt/ml.
"""
function train_fixture(models::AbstractString, spec::AbstractDict)
    root = training_root(spec)
    return root, train_in(root, models, spec["program"])
end

with_fixture_env(f, root, models, program) =
    withenv(f, "ROSETTA_ML_ROOT" => root, "ROSETTA_CODE_DIR" => joinpath(models, program),
            "ROSETTA_PROGRAM" => "model.jl", "SAGEMAKER_PROGRAM" => nothing, "ROSETTA_MODEL_DIR" => nothing)

first_line(path) = isfile(path) ? String(first(split(read(path, String), '\n'))) : nothing
full_match(pattern, s) = s !== nothing && occursin(Regex("^(?:" * pattern * ")\\z"), s)

"""
    run_training_case(models, case) -> mismatches

One training case (empty: it passes): `train` once, or once per element of `runs` on the same
/opt/ml, deleting `model/` and `output/` between runs (D8: a restarted job keeps its checkpoints).
"""
function run_training_case(models, case)
    root = training_root(case)
    runs = haskey(case, "runs") ? case["runs"] : [Dict{String,Any}("expect" => case["expect"])]
    for (k, run) in enumerate(runs)
        if k > 1
            rm(joinpath(root, "model"); recursive = true, force = true)
            rm(joinpath(root, "output"); recursive = true, force = true)
        end
        out = judge_training(root, train_in(root, models, case["program"]), run["expect"])
        isempty(out) || return length(runs) == 1 ? out : ["run $k: $m" for m in out]
    end
    return String[]
end

"The mismatches of one training run's outcome against its `expect`."
function judge_training(root, code, expect)
    out = String[]
    haskey(expect, "exit") && code != expect["exit"] && push!(out, "exit $code, expected $(expect["exit"])")
    failure = first_line(joinpath(root, "output", "failure"))
    haskey(expect, "failure") && failure != expect["failure"] &&
        push!(out, "failure $(repr(failure)), expected $(repr(expect["failure"]))")
    haskey(expect, "failure_pattern") && !full_match(expect["failure_pattern"], failure) &&
        push!(out, "failure $(repr(failure)) does not match /$(expect["failure_pattern"])/")
    for (key, file) in (("seen", joinpath(root, "output", "data", "seen.json")),
                        ("rosetta_json", joinpath(root, "model", "rosetta.json")))
        haskey(expect, key) || continue
        if !isfile(file)
            push!(out, "no $(basename(file)) (exit $code, failure $(repr(failure)))")
            continue
        end
        got = read_golden(file)
        for (k, v) in expect[key]
            haskey(got, k) || (push!(out, "$key.$k missing"); continue)
            same(got[k], v) || push!(out, "$key.$k = $(show_value(got[k])), expected $(show_value(v))")
        end
    end
    for p in get(expect, "files", Any[])
        ispath(joinpath(root, p)) || push!(out, "no /opt/ml/$p")
    end
    return out
end

# ---------------------------------------------------------------------------------------
# Serving

"""
    serving_app(models, setup) -> App or a String (why the setup could not be served)

Train the setup, then load it as `serve` would (user code, model, columns, hooks).
"""
function serving_app(models, setup)
    root, code = train_fixture(models, setup)
    code == 0 || return "setup training failed (exit $code): $(first_line(joinpath(root, "output", "failure")))"
    app = RG.App(RG.ServingSettings(Dict{String,String}()))
    with_fixture_env(root, models, setup["program"]) do
        with_logger(NullLogger()) do
            RG.load_model!(app)
        end
    end
    return app
end

"The case's request as the HTTP layer hands it to `route` (header names lower-cased)."
function golden_request(r::AbstractDict)
    target = get(r, "path", "/invocations")
    q = findfirst(==('?'), target)
    path = q === nothing ? target : target[1:q-1]
    headers = Pair{String,String}[lowercase(k) => string(v) for (k, v) in get(r, "headers", Dict{String,Any}())]
    body = haskey(r, "body_b64") ? base64decode(r["body_b64"]) : Vector{UInt8}(codeunits(get(r, "body", "")))
    haskey(r, "body_repeat") && (body = repeat(body, Int(r["body_repeat"])))
    return RG.Request(get(r, "method", "GET"), target, path, "HTTP/1.1", headers, body, true)
end

"""
    over_http(app, req) -> Response

The request through a real in-process server with the app's body limit, for what `route` never
sees (413 is the HTTP layer's answer, S-12).
"""
function over_http(app::RG.App, req::RG.Request)
    server = RG.start_server(r -> RG.route(app, r); host = ip"127.0.0.1", port = 0, threaded = false,
                             limits = RG.Limits(max_body = RG.max_body_bytes(app.settings)))
    try
        sock = connect(ip"127.0.0.1", server.port)
        head = IOBuffer()
        print(head, req.method, " ", req.target, " HTTP/1.1\r\nHost: golden\r\nConnection: close\r\n")
        foreach(((k, v),) -> print(head, k, ": ", v, "\r\n"), req.headers)
        print(head, "Content-Length: ", length(req.body), "\r\n\r\n")
        writer = @async (write(sock, take!(head)); write(sock, req.body))
        status = parse(Int, split(readline(sock))[2])
        headers = Pair{String,String}[]
        while (l = readline(sock)) != ""
            k, v = split(l, ':'; limit = 2)
            push!(headers, lowercase(k) => String(strip(v)))
        end
        hget(name) = something(get(Dict(headers), name, nothing), "")
        n = parse(Int, something(tryparse(Int, hget("content-length")), 0) |> string)
        body = read(sock, n)
        close(sock)
        try wait(writer) catch end               # the server may close before the whole body is sent
        ct = hget("content-type")
        return RG.Response(status, ct, body, filter(h -> !(h[1] in ("content-type", "content-length", "connection")), headers))
    finally
        RG.stop!(server; timeout = 1)
    end
end

media_of(ct) = lowercase(strip(first(split(ct, ';'))))
normalized(ct) = replace(lowercase(ct), " " => "")

case_env(case) = Dict{String,String}(string(k) => string(v) for (k, v) in something(get(case, "env", nothing), Dict{String,Any}()))

"The mismatches of one serving case against a loaded app (empty: it passes)."
function run_serving_case(loaded::RG.App, case)
    settings = RG.ServingSettings(case_env(case))
    app = RG.App(settings; model = loaded.model, ready = true, features = loaded.features,
                 n_features = loaded.n_features, custom_input = loaded.custom_input,
                 custom_output = loaded.custom_output, rowwise = loaded.rowwise)
    return judge_step(app, case["request"], case["expect"])
end

"One request to `app` (over HTTP when its body is over the limit) judged against `expect`."
function judge_step(app::RG.App, request::AbstractDict, expect::AbstractDict)
    req = golden_request(request)
    resp = with_logger(NullLogger()) do
        length(req.body) > RG.max_body_bytes(app.settings) ? over_http(app, req) : RG.route(app, req)
    end
    body = req.method == "HEAD" ? "" : String(copy(resp.body))
    out = String[]
    got = "$(resp.status) $(repr(first(split(body, '\n'))))"
    haskey(expect, "status") && resp.status != expect["status"] &&
        push!(out, "status $(resp.status), expected $(expect["status"]) (body $(repr(body)))")
    if haskey(expect, "message")
        body == expect["message"] * "\n" || push!(out, "body $(repr(body)), expected $(repr(expect["message"] * "\n"))")
        normalized(resp.content_type) == "text/plain;charset=utf-8" ||
            push!(out, "content type $(repr(resp.content_type)) for a message")
    end
    if haskey(expect, "message_pattern")
        line = String(first(split(body, '\n')))
        full_match(expect["message_pattern"], line) || push!(out, "message $(repr(line)) does not match /$(expect["message_pattern"])/")
    end
    haskey(expect, "content_type") && media_of(resp.content_type) != media_of(expect["content_type"]) &&
        push!(out, "content type $(repr(resp.content_type)), expected $(repr(expect["content_type"])) ($got)")
    if haskey(expect, "headers")
        have = Dict{String,String}(lowercase(k) => v for (k, v) in resp.headers)
        isempty(resp.content_type) || (have["content-type"] = resp.content_type)
        have["content-length"] = string(length(resp.body))
        for (k, v) in expect["headers"]
            get(have, lowercase(k), nothing) == string(v) ||
                push!(out, "header $k: $(repr(get(have, lowercase(k), nothing))), expected $(repr(v))")
        end
    end
    haskey(expect, "body") && body != expect["body"] && push!(out, "body $(repr(body)), expected $(repr(expect["body"]))")
    if haskey(expect, "json")                    # the keys given must equal the body's
        got_json = try RG.parse_json(body; maxdepth = 1000) catch; nothing end
        want = expect["json"]
        if got_json === nothing
            push!(out, "body $(repr(body)) is not JSON")
        elseif want isa AbstractDict && got_json isa AbstractDict
            for (k, v) in want
                haskey(got_json, k) && same(got_json[k], v) ||
                    push!(out, "json.$k = $(show_value(get(got_json, k, nothing))), expected $(show_value(v))")
            end
        else
            same(got_json, want) || push!(out, "json $(show_value(got_json)), expected $(show_value(want))")
        end
    end
    if haskey(expect, "json_keys")
        got_json = try RG.parse_json(body; maxdepth = 1000) catch; nothing end
        got_json isa AbstractDict && Set(keys(got_json)) == Set(expect["json_keys"]) ||
            push!(out, "json keys of $(repr(body)), expected $(show_value(expect["json_keys"]))")
    end
    if haskey(expect, "records") || haskey(expect, "record_count")
        recs = try
            output_records(media_of(resp.content_type), body)
        catch e
            push!(out, "cannot read records ($got): $(sprint(showerror, e))")
            nothing
        end
        if recs !== nothing && haskey(expect, "records")
            want = [as_record(r) for r in expect["records"]]
            same(recs, want) || push!(out, "records $(show_value(recs)), expected $(show_value(want))")
        end
        recs !== nothing && haskey(expect, "record_count") && length(recs) != expect["record_count"] &&
            push!(out, "$(length(recs)) records, expected $(expect["record_count"])")
    end
    return out
end

# ---------------------------------------------------------------------------------------
# Multi-model cases (D6, multimodel.json): a models root per setup, a fresh store per case

"Every `{models}` in the strings of a JSON value replaced by `root`."
with_models(x::AbstractString, root) = replace(x, "{models}" => root)
with_models(x::AbstractDict, root) = Dict{String,Any}(k => with_models(v, root) for (k, v) in x)
with_models(x::AbstractVector, root) = Any[with_models(v, root) for v in x]
with_models(x, root) = x

"""
    models_root(models, mm_setup, serving_setups) -> root or a String (why not)

`<root>/<name>/model` for each model of a multi-model setup (README: a copy of the trained
serving setup's model folder; `corrupt`, `pad_mb`, `empty`).
"""
function models_root(models, mm_setup, serving_setups)
    root = mktempdir()
    trained = Dict{String,String}()
    for (name, spec) in mm_setup["models"]
        dest = joinpath(root, name, "model")
        if get(spec, "empty", false) == true
            mkpath(dest)
            continue
        end
        s = spec["setup"]
        if !haskey(trained, s)
            setup = copy(serving_setups[s])
            setup["program"] = mm_setup["program"]
            ml, code = train_fixture(models, setup)
            code == 0 || return "setup $s training failed (exit $code)"
            trained[s] = joinpath(ml, "model")
        end
        mkpath(dirname(dest))
        cp(trained[s], dest)
        if get(spec, "corrupt", false) == true
            for (dir, _, files) in walkdir(dest), f in files
                f == "rosetta.json" || write(joinpath(dir, f), "not a model\n")
            end
        end
        haskey(spec, "pad_mb") && write(joinpath(dest, "padding.bin"), zeros(UInt8, Int(spec["pad_mb"]) * 2^20))
    end
    return root
end

"The mismatches of one multi-model case: its steps in order against a fresh multi-model app."
function run_multimodel_case(models, mm_setup, root, case)
    settings = RG.ServingSettings(case_env(case))
    settings.multi_model || return ["env has no SAGEMAKER_MULTI_MODEL=true"]
    M = with_fixture_env(root, models, mm_setup["program"]) do
        RG.model_type(RG.load_user_code())
    end
    app = RG.App(settings; ready = true)
    app.models = RG.ModelStore(settings, M)
    for (k, step) in enumerate(case["steps"])
        out = judge_step(app, with_models(step["request"], root), with_models(step["expect"], root))
        isempty(out) || return ["step $k: $m" for m in out]
    end
    return String[]
end

# ---------------------------------------------------------------------------------------

const GOLDEN = golden_dir()

const GOLDEN_T0 = time()
@testset "golden" begin
    if GOLDEN === nothing
        @error "golden cases not found: set ROSETTA_GOLDEN_DIR, run from a checkout, or mount conformance/golden at /rosetta-golden"
        @test GOLDEN !== nothing
    else
        models = joinpath(GOLDEN, "models", "julia")
        diffs_file = joinpath(GOLDEN, "expected-differences", "julia.json")
        expected = isfile(diffs_file) ? read_golden(diffs_file) : Dict{String,Any}()
        files = Dict(name => joinpath(GOLDEN, name * ".json") for name in ("serving", "training"))
        suites = Dict(name => (isfile(f) ? get(read_golden(f), "cases", Any[]) : nothing) for (name, f) in files)
        ids = Set{String}()
        for (name, cases) in suites
            @test cases !== nothing          # conformance/golden/<name>.json exists
            cases === nothing || union!(ids, String(c["id"]) for c in cases)
        end
        mm = joinpath(GOLDEN, "multimodel.json")
        mm_doc = isfile(mm) ? read_golden(mm) : nothing
        @test mm_doc !== nothing              # conformance/golden/multimodel.json exists
        mm_cases = mm_doc === nothing ? Any[] : get(mm_doc, "cases", Any[])
        mm_ids = String[String(c["id"]) for c in mm_cases]
        union!(ids, mm_ids)
        @testset "expected differences have reasons and name cases" begin
            for (id, reason) in expected
                @test reason isa AbstractString && !isempty(strip(reason))
                @test id in ids
            end
        end
        check(id, mism) = haskey(expected, id) ? (@test_broken mism == String[]) : (@test mism == String[])
        guarded(f) = try
            f()
        catch e
            ["runner error: $(sprint(showerror, e))"]
        end
        t_training = time()
        if suites["training"] !== nothing
            @testset "training $(c["id"])" for c in suites["training"]
                check(c["id"], guarded(() -> run_training_case(models, c)))
            end
        end
        @info "golden training cases: $(round(time() - t_training; digits = 1)) s"
        if suites["serving"] !== nothing
            setups = get(read_golden(files["serving"]), "setups", Dict{String,Any}())
            apps = Dict{String,Any}()
            @testset "serving $(c["id"])" for c in suites["serving"]
                check(c["id"], guarded() do
                    name = c["setup"]
                    haskey(setups, name) || return ["no setup '$name' in serving.json"]
                    app = get!(() -> guarded(() -> serving_app(models, setups[name])), apps, name)
                    app isa RG.App || return [join(app isa AbstractVector ? app : [string(app)], "; ")]
                    run_serving_case(app, c)
                end)
            end
        end
        if mm_doc !== nothing
            serving_setups = get(read_golden(files["serving"]), "setups", Dict{String,Any}())
            mm_setups = get(mm_doc, "setups", Dict{String,Any}())
            roots = Dict{String,Any}()
            @testset "multi-model $(c["id"])" for c in mm_cases
                check(c["id"], guarded() do
                    name = c["setup"]
                    haskey(mm_setups, name) || return ["no setup '$name' in multimodel.json"]
                    root = get!(() -> guarded(() -> models_root(models, mm_setups[name], serving_setups)), roots, name)
                    root isa String && isdir(root) || return [join(root isa AbstractVector ? root : [string(root)], "; ")]
                    with_logger(NullLogger()) do
                        run_multimodel_case(models, mm_setups[name], root, c)
                    end
                end)
            end
        end
        n = Dict(k => v === nothing ? 0 : length(v) for (k, v) in suites)
        @info "golden cases: $(n["serving"]) serving, $(n["training"]) training, $(length(mm_ids)) multi-model run in-process; $(length(expected)) expected differences ($(round(time() - GOLDEN_T0; digits = 1)) s)"
    end
end
