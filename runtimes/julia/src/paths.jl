# Paths and environment: every /opt/ml location and every env var the runtime reads, in one
# place (contract §5). ROSETTA_ML_ROOT lets the tests run the runtime on a temp dir.

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
checkpoint_dir() = joinpath(ml_root(), "checkpoints")                # T-13

code_dir() = get(ENV, "ROSETTA_CODE_DIR", "/opt/program")
program_name() = get(ENV, "ROSETTA_PROGRAM", get(ENV, "SAGEMAKER_PROGRAM", "model.jl"))
program_path() = joinpath(code_dir(), program_name())

"""
    env_int(name, default; min = typemin(Int)) -> Int

An integer environment variable; unset or blank gives `default`. A value that is not an
integer is an error that names the variable (a misconfigured container must fail loudly).
"""
function env_int(name::AbstractString, default::Integer; min::Integer = typemin(Int))
    raw = strip(get(ENV, name, ""))
    isempty(raw) && return Int(default)
    v = tryparse(Int, raw)
    v === nothing && error("$name must be an integer, got '$raw'")
    return max(v, Int(min))
end

env_bool(name::AbstractString, default::Bool = false) =
    lowercase(strip(get(ENV, name, default ? "true" : "false"))) in ("1", "true", "yes", "on")

bind_port() = env_int("SAGEMAKER_BIND_TO_PORT", 8080)                       # S-04
"Request body limit in bytes: SAGEMAKER_MAX_PAYLOAD_IN_MB MiB, never below 6 MiB (S-12)."
max_payload_mb() = env_int("SAGEMAKER_MAX_PAYLOAD_IN_MB", 6; min = 6)
max_payload_bytes() = max_payload_mb() * 1024 * 1024
"""MaxPayloadInMB advertised on `/execution-parameters` (B-03): SAGEMAKER_MAX_PAYLOAD_IN_MB, else 2 MB so
that a few MB of records spread over all workers (see docs/runtime-contract.md); not the body limit."""
batch_payload_mb() = env_int("SAGEMAKER_MAX_PAYLOAD_IN_MB", 2; min = 1)
"MiB allocated between the serving loop's own garbage collections (`keep_memory`); 0 disables them."
gc_every_mb() = env_int("ROSETTA_GC_MB", 128; min = 0)
server_workers() = env_int("SAGEMAKER_MODEL_SERVER_WORKERS", Threads.nthreads(); min = 1)
