# Paths and settings: every /opt/ml location and every environment variable the runtime reads,
# in one place (contract §5). ROSETTA_ML_ROOT lets the tests run the runtime on a temp dir.
# Serving reads its variables once, at start, into a `ServingSettings` (never per request).

ml_root() = get(ENV, "ROSETTA_ML_ROOT", "/opt/ml")
input_dir() = joinpath(ml_root(), "input")
config_dir() = joinpath(input_dir(), "config")                       # T-01, T-04, T-05
config_file(name) = joinpath(config_dir(), name)
data_root() = joinpath(input_dir(), "data")                          # T-07 (maybe read-only, T-08)
channel_dir(channel) = joinpath(data_root(), channel)
model_dir() = get(ENV, "ROSETTA_MODEL_DIR", joinpath(ml_root(), "model"))   # T-14, S-02
output_dir() = joinpath(ml_root(), "output")
output_data_dir() = joinpath(output_dir(), "data")                   # T-15
failure_file() = joinpath(output_dir(), "failure")                   # T-17
default_checkpoint_dir() = joinpath(ml_root(), "checkpoints")        # T-13 (checkpoints.jl: LocalPath)

code_dir() = get(ENV, "ROSETTA_CODE_DIR", "/opt/program")
program_name() = get(ENV, "ROSETTA_PROGRAM", get(ENV, "SAGEMAKER_PROGRAM", "model.jl"))
program_path() = joinpath(code_dir(), program_name())

"The metadata file written next to the model at the end of training (D2)."
const METADATA_FILE = "rosetta.json"

"""
    env_int(env, name, default; min = typemin(Int)) -> Int

An integer variable of `env`; unset or blank gives `default`. A value that is not an integer
is an error that names the variable (a misconfigured container must fail loudly).
"""
function env_int(env::AbstractDict, name::AbstractString, default::Integer; min::Integer = typemin(Int))
    raw = strip(get(env, name, ""))
    isempty(raw) && return Int(default)
    v = tryparse(Int, raw)
    v === nothing && error("$name must be an integer, got '$raw'")
    return max(v, Int(min))
end

"A boolean variable of `env`: 1/true/yes/on (any case); unset or blank gives `default`."
function env_bool(env::AbstractDict, name::AbstractString, default::Bool = false)
    raw = lowercase(strip(get(env, name, "")))
    return isempty(raw) ? default : raw in ("1", "true", "yes", "on")
end

const MIB = 1024 * 1024
"SageMaker's real-time payload limit: the server never accepts less (S-12)."
const MIN_PAYLOAD_MB = 6
"""MaxPayloadInMB advertised on `/execution-parameters` (B-03) when SAGEMAKER_MAX_PAYLOAD_IN_MB
is unset: small enough that a few MB of records spread over all workers (docs/runtime-contract.md)."""
const BATCH_PAYLOAD_MB = 2

"""
    ServingSettings(env = ENV)

Serving configuration, read once at start from SageMaker's variables and Rosetta's own
(S-04, S-12, B-02, B-03, D1, D3); the routes and codecs read this, never `ENV`:

- `port`: SAGEMAKER_BIND_TO_PORT (8080);
- `workers`: SAGEMAKER_MODEL_SERVER_WORKERS (the thread count);
- `max_payload_mb`: the body limit, SAGEMAKER_MAX_PAYLOAD_IN_MB MiB, never below 6 (413 above);
- `batch_payload_mb`: MaxPayloadInMB advertised on `/execution-parameters` (2 unless set);
- `max_concurrent_transforms`: SAGEMAKER_MAX_CONCURRENT_TRANSFORMS (`workers`);
- `batch_strategy`: SAGEMAKER_BATCH_STRATEGY, `MULTI_RECORD` or `SINGLE_RECORD`;
- `default_accept`: the media type of SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT ("" if unset);
- `csv_header`: ROSETTA_CSV_HEADER (a CSV request may start with a header row, D1);
- `gc_mb`: ROSETTA_GC_MB, MiB allocated between the server's own collections (0: off);
- `multi_model`: SAGEMAKER_MULTI_MODEL=true (any case): models come and go through `/models` (D6);
- `mme_memory_bytes`: ROSETTA_MME_MEMORY_MB MiB (0 refuses every model), else 80 % of the
  container's memory limit (D6; read in multi-model mode only);
- `batching`: ROSETTA_BATCHING `auto` (default: on for row-wise models) or `off` (D9);
- `batch_max_rows`: ROSETTA_BATCH_MAX_ROWS (512); `batch_wait_ms`: ROSETTA_BATCH_WAIT_MS (0).
"""
struct ServingSettings
    port::Int
    workers::Int
    max_payload_mb::Int
    batch_payload_mb::Int
    max_concurrent_transforms::Int
    batch_strategy::String
    default_accept::String
    csv_header::Bool
    gc_mb::Int
    multi_model::Bool
    mme_memory_bytes::Int
    batching::Bool
    batch_max_rows::Int
    batch_wait_ms::Int
end

function ServingSettings(env::AbstractDict = ENV)
    # the entrypoint starts one thread per worker plus the I/O thread (http.jl)
    workers = env_int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", max(1, Threads.nthreads() - 1); min = 1)
    multi_model = lowercase(strip(get(env, "SAGEMAKER_MULTI_MODEL", ""))) == "true"
    mode = lowercase(strip(get(env, "ROSETTA_BATCHING", "auto")))
    mode in ("", "auto", "on", "true", "1", "off", "false", "0") ||
        error("ROSETTA_BATCHING must be auto or off, got '$(get(env, "ROSETTA_BATCHING", ""))'")
    strategy = replace(replace(uppercase(strip(get(env, "SAGEMAKER_BATCH_STRATEGY", ""))),
                               "MULTIRECORD" => "MULTI_RECORD"), "SINGLERECORD" => "SINGLE_RECORD")
    accept = strip(get(env, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", ""))
    return ServingSettings(
        env_int(env, "SAGEMAKER_BIND_TO_PORT", 8080),
        workers,
        env_int(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", MIN_PAYLOAD_MB; min = MIN_PAYLOAD_MB),
        env_int(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", BATCH_PAYLOAD_MB; min = 1),
        env_int(env, "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", workers; min = 1),
        strategy in ("MULTI_RECORD", "SINGLE_RECORD") ? strategy : "MULTI_RECORD",
        isempty(accept) ? "" : first(media_type(accept)),
        env_bool(env, "ROSETTA_CSV_HEADER"),
        env_int(env, "ROSETTA_GC_MB", 128; min = 0),
        multi_model,
        multi_model ? memory_budget(env) : 0,
        !(mode in ("off", "false", "0")),
        env_int(env, "ROSETTA_BATCH_MAX_ROWS", 512; min = 1),
        env_int(env, "ROSETTA_BATCH_WAIT_MS", 0; min = 0),
    )
end

"The share of the container's memory that models may take when ROSETTA_MME_MEMORY_MB is unset (D6)."
const MME_MEMORY_SHARE = 0.8

"ROSETTA_MME_MEMORY_MB in bytes (0 refuses every model), else 80 % of [`memory_limit`](@ref)."
function memory_budget(env::AbstractDict)
    mb = env_int(env, "ROSETTA_MME_MEMORY_MB", -1)
    mb >= 0 && return mb * MIB
    isempty(strip(get(env, "ROSETTA_MME_MEMORY_MB", ""))) ||
        error("ROSETTA_MME_MEMORY_MB must be ≥ 0, got '$(env["ROSETTA_MME_MEMORY_MB"])'")
    return floor(Int, memory_limit() * MME_MEMORY_SHARE)
end

"""
    memory_limit() -> Int

The container's memory limit in bytes: cgroup v2 `memory.max` or v1 `memory.limit_in_bytes`,
else (unlimited, or no cgroup) the machine's physical memory.
"""
function memory_limit()
    physical = Int(Sys.total_memory())
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
        raw = try
            strip(read(f, String))
        catch
            continue
        end
        v = all(isdigit, raw) && !isempty(raw) ? tryparse(Int, raw) : nothing
        return v !== nothing && 0 < v < physical ? v : physical
    end
    return physical
end

"The request body limit in bytes (S-12)."
max_body_bytes(s::ServingSettings) = s.max_payload_mb * MIB
