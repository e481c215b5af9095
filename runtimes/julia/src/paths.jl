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
- `gc_mb`: ROSETTA_GC_MB, MiB allocated between the server's own collections (0: off).
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
end

function ServingSettings(env::AbstractDict = ENV)
    workers = env_int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", Threads.nthreads(); min = 1)
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
    )
end

"The request body limit in bytes (S-12)."
max_body_bytes(s::ServingSettings) = s.max_payload_mb * MIB
