# The user's side of the contract (§2): generic functions the user's model.jl adds methods
# to, their defaults, and finding the model type. The runtime calls every user function
# through `Base.invokelatest`, because model.jl is included after the runtime's own code
# (and its server tasks) was compiled.

"""
    fit(::Type{M}, data::Data, hyperparameters::NamedTuple) -> M

Train a model. Define a method for your type `M`; `data[channel]` is a [`Table`](@ref).
"""
function fit end

"""
    predict(model::M, X::Matrix{Float64}) -> AbstractVector or AbstractMatrix

One prediction per row of `X` (a vector), or one row per record (a matrix).
"""
function predict end

"""
    hyperparameters(::Type{M}) -> NamedTuple

Declared hyperparameters and their defaults, e.g. `(epochs = 200, lr = 0.1)`; the default's
type is the declared type. Without a method, values are passed decoded but untyped.
"""
hyperparameters(::Type) = nothing

"""
    rowwise(::Type{M}) -> Bool

Declare `true` when `predict(model, X)` answers each row of `X` on its own (row `i` of the
result depends on row `i` of `X` only): then concurrent requests may be stacked into ONE
`predict` call and split back (adaptive batching, D9). Default `false`: never batched.
"""
rowwise(::Type) = false

"""
    feature_names(model) -> Union{Vector{String},Nothing}

The columns a request row carries, in order (D2). Without a method, they are the training
table's columns minus the `target` hyperparameter's column (written to `rosetta.json` at the
end of training); define it when the model uses other columns (a subset, derived features).
"""
feature_names(model) = nothing

"""
    n_features(model) -> Union{Int,Nothing}

How many columns a request row must have when the feature names are unknown (D2);
`nothing` if unknown.
"""
n_features(model) = nothing

"""
    save(model, dir)  /  load(::Type{M}, dir)

Persist the model under `dir` (the default: `Serialization` to `dir/model.jls`).
"""
save(model, dir::AbstractString) = serialize(joinpath(dir, "model.jls"), model)
function load(::Type{M}, dir::AbstractString) where {M}
    f = joinpath(dir, "model.jls")
    isfile(f) || throw(ModelError("no model file $f"))
    check_model_file(f)
    m = try
        deserialize(f)
    catch e
        e isa InterruptException && rethrow()
        throw(ModelError("corrupt model file $f: cannot deserialize it ($(exception_line(e)))"))
    end
    m isa M || throw(ModelError("corrupt model file $f: it holds a $(typeof(m)), expected $M"))
    return m
end

"How a `Serialization` stream starts (tag 0x37, \"JL\")."
const SERIALIZATION_HEADER = UInt8[0x37, 0x4a, 0x4c]

"""
    check_model_file(f)

Throw a [`ModelError`](@ref) unless `f` starts like a `Serialization` stream (tag 0x37,
"JL"): a corrupt model fails in microseconds instead of after compiling the user's code.
"""
function check_model_file(f::AbstractString)
    head = open(io -> read(io, 3), f)
    head == SERIALIZATION_HEADER ||
        throw(ModelError("corrupt model file $f: not a Julia Serialization stream (it starts with $(repr(head)))"))
    return nothing
end

"""
    defines_load(path) -> Bool

Whether the user's file (text, not loaded yet) defines its own `load` method, so the
default `model.jls` format is not implied.
"""
defines_load(path::AbstractString) =
    isfile(path) && occursin(r"(?m)^\s*(function\s+)?(Rosetta\.)?load\s*\(", read(path, String))

"""
    input_fn(model, body::Vector{UInt8}, content_type::String) -> X or nothing

Custom request decoding; return `nothing` to use the built-in codecs.
"""
input_fn(model, body, content_type) = nothing

"""
    output_fn(model, predictions, accept::String) -> (body, content_type) or nothing

Custom response encoding; return `nothing` to use the built-in codecs.
"""
output_fn(model, predictions, accept) = nothing

"""
    checkpoint(::Type{M}, checkpoint_dir)

Called when training is stopped (SIGTERM, T-21) so the model can save its progress (T-13).
"""
checkpoint(::Type, dir) = nothing

"""
    log_metric(name, value)

Print a metric line `#metric name=value` on stdout (T-20); SageMaker's metric definitions
match it with the regex `name=(\\S+)`.
"""
function log_metric(name::AbstractString, value)
    println(stdout, "#metric ", name, "=", value)
    flush(stdout)
    return nothing
end

# ---------------------------------------------------------------------------------------

"""
    defines(f, argtypes) -> Bool

Whether user code (not Rosetta's default) has a method of `f` for these argument types, e.g.
`defines(input_fn, (M, Any, Any))`.
"""
defines(f, argtypes::Tuple) = any(m -> m.module !== Rosetta, methods(f, argtypes))

"""
    call_user(f, args...)

Call a user function at the latest world age; exceptions other than the runtime's own
([`RuntimeErrors`](@ref), `InterruptException`) become a `UserCodeError`.
"""
function call_user(f, args...)
    try
        return Base.invokelatest(f, args...)
    catch e
        e isa Union{RuntimeErrors,InterruptException} && rethrow()
        throw(UserCodeError(e, catch_backtrace()))
    end
end

"""
    load_user_code(path = program_path()) -> Module

Include the user's file into a fresh module `Main.RosettaUser` that already has
`using Rosetta` and imports the hook functions, so `fit(::Type{M}, …) = …` in model.jl
extends `Rosetta.fit`. (Deserialized models find their type there again when serving.)
A container loads it once; a process that loads the same, unchanged file again (the
in-process tests: a training run per case) gets the module it already has, so the user's
types, and the code compiled for them, stay the same.
"""
function load_user_code(path::AbstractString = program_path())
    isfile(path) || throw(UserCodeError(ErrorException("no user code at $path (set ROSETTA_CODE_DIR / ROSETTA_PROGRAM)"), nothing))
    source = read(path)
    last = LOADED_USER_CODE[]
    if last !== nothing && last[1] == abspath(path) && last[2] == source &&
       isdefined(Main, :RosettaUser) && getfield(Main, :RosettaUser) === last[3]
        return last[3]
    end
    mod = Core.eval(Main, :(module RosettaUser end))
    Core.eval(mod, :(using Rosetta))
    Core.eval(mod, :(import Rosetta: fit, predict, hyperparameters, feature_names, n_features, save, load,
                     input_fn, output_fn, checkpoint, rowwise))
    try
        Base.include(mod, path)
    catch e
        e isa InterruptException && rethrow()
        throw(UserCodeError(e, catch_backtrace()))
    end
    LOADED_USER_CODE[] = (abspath(path), source, mod)
    return mod
end

"The user file last included (path, bytes, module): see [`load_user_code`](@ref)."
const LOADED_USER_CODE = Ref{Any}(nothing)

"""
    model_type(mod) -> Type

The user's model type: `const MODEL = M` if the file defines it, else the unique `M` with a
`fit(::Type{M}, data, hyperparameters)` method defined in the file.
"""
function model_type(mod::Module)
    isdefined(mod, :MODEL) && return getfield(mod, :MODEL)
    found = Any[]
    for m in methods(fit)
        m.module === mod || continue
        sig = Base.unwrap_unionall(m.sig)
        length(sig.parameters) >= 2 || continue
        t = sig.parameters[2]
        if t isa DataType && t <: Type && length(t.parameters) == 1 && t.parameters[1] isa Type
            push!(found, t.parameters[1])
        end
    end
    unique!(found)
    length(found) == 1 && return found[1]
    msg = isempty(found) ? "$(program_name()) defines no method fit(::Type{M}, data, hyperparameters)" :
          "$(program_name()) defines fit for several types ($(join(found, ", "))); add `const MODEL = <your type>`"
    throw(UserCodeError(ErrorException(msg), nothing))
end
