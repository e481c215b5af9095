# Checkpoints for jobs that stop and restart (spot training; T-13, D8). The folder is `LocalPath`
# of checkpointconfig.json when SageMaker writes one, else /opt/ml/checkpoints; SageMaker syncs it to
# S3 and restores it into the next attempt, so `load_checkpoint()` at the start of `fit` resumes
# where `save_checkpoint` left off.

"The file [`save_checkpoint`](@ref) writes in the checkpoint folder."
const CHECKPOINT_FILE = "rosetta-checkpoint.jls"

"""
    checkpoint_dir() -> String

The checkpoint folder (created if missing): `LocalPath` of checkpointconfig.json, else
/opt/ml/checkpoints. For users who write their own files there; the SIGTERM hook
`checkpoint(::Type{M}, dir)` gets it too.
"""
function checkpoint_dir()
    folder = default_checkpoint_dir()
    file = config_file("checkpointconfig.json")
    if isfile(file)
        doc = try
            parse_json(read(file, String))
        catch e
            e isa JSONError || rethrow()
            throw(DataError("checkpointconfig.json is not valid JSON: $(e.msg)"))
        end
        path = doc isa AbstractDict ? get(doc, "LocalPath", nothing) : nothing
        path isa AbstractString && !isempty(path) && (folder = String(path))
    end
    mkpath(folder)
    return folder
end

"""
    save_checkpoint(obj) -> path

Write `obj` (`Serialization`) as the checkpoint, atomically (a temporary file renamed over the
previous one): a stop in the middle leaves the previous checkpoint whole.
"""
function save_checkpoint(obj)
    dir = checkpoint_dir()
    file = joinpath(dir, CHECKPOINT_FILE)
    tmp = joinpath(dir, ".$(CHECKPOINT_FILE).$(getpid()).tmp")
    try
        open(tmp, "w") do io
            serialize(io, obj)
            flush(io)
            Sys.islinux() && ccall(:fsync, Cint, (Cint,), fd(io))
        end
        mv(tmp, file; force = true)
    catch
        rm(tmp; force = true)
        rethrow()
    end
    return file
end

"""
    load_checkpoint() -> object or nothing

The object of the last [`save_checkpoint`](@ref), or `nothing` when there is no checkpoint. An
unreadable checkpoint is a `DataError`.
"""
function load_checkpoint()
    file = joinpath(checkpoint_dir(), CHECKPOINT_FILE)
    isfile(file) || return nothing
    head = open(io -> read(io, 3), file)
    head == SERIALIZATION_HEADER ||       # `deserialize` would read garbage as some value
        throw(DataError("checkpoint $file is unreadable: not a Julia Serialization stream"))
    try
        return deserialize(file)          # written by this job's own code: trusted like the model
    catch e
        e isa InterruptException && rethrow()
        throw(DataError("checkpoint $file is unreadable: $(exception_line(e))"))
    end
end
