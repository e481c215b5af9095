# Typed hyperparameters from SageMaker's all-string hyperparameters.json (T-01, T-02).
# A value arrives as str(v) ("3", "True", "['a', 'b']") or as json.dumps(v) ("\"abc\"",
# "true", "[1, 2]"): decode JSON if it is JSON, else keep the raw string, then coerce to the
# type implied by the user's default (contract §3.1).

"Decode one SageMaker value: JSON if it parses, else the raw string."
function decode_value(raw)
    raw isa AbstractString || return raw            # a non-string in the file: already decoded
    try
        return parse_json(raw)
    catch e
        e isa JSONError || rethrow()
        return String(raw)
    end
end

"""
    reserved_hyperparameter(key::AbstractString) -> Bool

Whether `key` is SageMaker's own, never the user's: `sagemaker_*` (the SDK's) and
`_tuning_objective_metric` (added to every training job of a tuning job). Accepted and left out
of the user's hyperparameters.
"""
reserved_hyperparameter(key::AbstractString) = startswith(key, "sagemaker_") || key == "_tuning_objective_metric"

"""
    given_hyperparameters(raw::AbstractDict, defaults) -> Dict{Symbol,Any}

The hyperparameters GIVEN in `raw` (hyperparameters.json), decoded and coerced to their declared
type: `defaults` is a `NamedTuple` (from `hyperparameters(M)`) whose values imply the types, or
`nothing` (values are passed decoded but untyped). SageMaker's own keys are left out
(`reserved_hyperparameter`); `None` /
`null` means "not given" (the default applies); an undeclared key is an error when types are
declared. These are what `SM_HPS` carries (D4).
"""
function given_hyperparameters(raw::AbstractDict, defaults::Union{NamedTuple,Nothing})
    given = Dict{Symbol,Any}()
    for (k, v) in raw
        key = String(k)
        reserved_hyperparameter(key) && continue
        if defaults !== nothing && !haskey(defaults, Symbol(key))
            declared = join(sort!(string.(collect(keys(defaults)))), ", ")
            throw(HyperparameterError("unknown hyperparameter '$key'; declared: $declared"))
        end
        decoded = decode_value(v)
        (decoded === nothing || decoded == "None") && continue   # missing: the default applies
        given[Symbol(key)] = defaults === nothing ? decoded : coerce(key, v, decoded, defaults[Symbol(key)])
    end
    return given
end

"""
    with_defaults(given, defaults) -> NamedTuple

What `fit` receives: every declared name, given values over defaults (only the given ones,
sorted by name, when nothing is declared).
"""
function with_defaults(given::AbstractDict{Symbol}, defaults::Union{NamedTuple,Nothing})
    if defaults === nothing
        ks = sort!(collect(keys(given)))
        return NamedTuple{Tuple(ks)}(Tuple(given[k] for k in ks))
    end
    ks = keys(defaults)
    return NamedTuple{ks}(Tuple(get(given, k, defaults[k]) for k in ks))
end

"""
    decode_hyperparameters(raw::AbstractDict, defaults) -> NamedTuple

[`given_hyperparameters`](@ref) completed with the declared defaults ([`with_defaults`](@ref)).
"""
decode_hyperparameters(raw::AbstractDict, defaults::Union{NamedTuple,Nothing}) =
    with_defaults(given_hyperparameters(raw, defaults), defaults)

"Spellings of a boolean hyperparameter (any case), besides JSON `true`/`false` (D4)."
const TRUE_WORDS = ("true", "1", "yes", "y", "on")
const FALSE_WORDS = ("false", "0", "no", "n", "off")

shown(raw) = raw isa AbstractString ? raw : json(raw)
bad(key, raw, what) = throw(HyperparameterError("$key: expected $what, got '$(shown(raw))'"))

"Coerce a decoded value to the type of `default` (the declaration)."
function coerce(key, raw, v, default)
    if default isa Bool
        v isa Bool && return v
        v isa Integer && v in (0, 1) && return v == 1
        if v isa AbstractString
            s = lowercase(strip(v))
            s in TRUE_WORDS && return true
            s in FALSE_WORDS && return false
        end
        bad(key, raw, "a boolean (true/false)")
    elseif default isa Integer
        v isa Bool && bad(key, raw, "an integer")
        v isa Integer && return convert(typeof(default), v)
        v isa AbstractFloat && isfinite(v) && isinteger(v) && return convert(typeof(default), Int(v))
        if v isa AbstractString
            i = tryparse(Int, strip(v))
            i !== nothing && return convert(typeof(default), i)
            f = tryparse(Float64, strip(v))
            f !== nothing && isfinite(f) && isinteger(f) && return convert(typeof(default), Int(f))
        end
        bad(key, raw, "an integer")
    elseif default isa AbstractFloat
        v isa Bool && bad(key, raw, "a number")
        v isa Real && return convert(typeof(default), v)
        if v isa AbstractString
            f = tryparse(Float64, strip(v))
            f !== nothing && return convert(typeof(default), f)
        end
        bad(key, raw, "a number")
    elseif default isa AbstractString || default isa Symbol
        # a JSON-quoted string was unquoted once by decode_value; "3" stays "3"
        s = v isa AbstractString ? String(v) : shown(raw)
        return default isa Symbol ? Symbol(s) : s
    elseif default isa AbstractVector || default isa Tuple
        list = v isa AbstractVector ? v : v isa AbstractString ? pyliteral(key, raw, v, "a list") : nothing
        list isa AbstractVector || bad(key, raw, "a list")
        default isa Tuple && return Tuple(list)
        T = eltype(default)
        T === Any && return Vector{Any}(list)
        try
            return T[el isa AbstractString && !(T <: AbstractString) ? coerce(key, raw, el, zero_of(T)) : el for el in list]
        catch e
            e isa HyperparameterError && rethrow()
            bad(key, raw, "a list of $T")
        end
    elseif default isa AbstractDict
        d = v isa AbstractDict ? v : v isa AbstractString ? pyliteral(key, raw, v, "a dict") : nothing
        d isa AbstractDict || bad(key, raw, "a dict")
        return d
    else
        return v            # `nothing` or another type as default: passed decoded, untyped
    end
end
zero_of(::Type{T}) where {T<:Number} = zero(T)
zero_of(::Type{T}) where {T} = error("cannot coerce to $T")

# ---------------------------------------------------------------------------------------
# Python literals (str() of a list or dict), parsed, never evaluated: lists, tuples, dicts,
# quoted strings, numbers, True/False/None.

"Parse a Python literal; anything else is a HyperparameterError saying `expected <what>`."
function pyliteral(key, raw, s::AbstractString, what::AbstractString)
    p = PyLit(collect(s), 1, key, raw, what)
    v = pyvalue!(p)
    pyskip!(p)
    p.i <= length(p.c) && pyfail(p)
    return v
end

mutable struct PyLit
    c::Vector{Char}
    i::Int
    key::Any
    raw::Any
    what::String
end
pyskip!(p::PyLit) = while p.i <= length(p.c) && isspace(p.c[p.i]); p.i += 1; end
pyfail(p::PyLit) = bad(p.key, p.raw, p.what)

function pyvalue!(p::PyLit)
    pyskip!(p)
    p.i > length(p.c) && pyfail(p)
    c = p.c[p.i]
    if c == '[' || c == '('
        close = c == '[' ? ']' : ')'
        p.i += 1
        out = Any[]
        while true
            pyskip!(p)
            p.i > length(p.c) && pyfail(p)
            p.c[p.i] == close && (p.i += 1; return out)
            push!(out, pyvalue!(p))
            pyskip!(p)
            p.i > length(p.c) && pyfail(p)
            if p.c[p.i] == ','
                p.i += 1
            elseif p.c[p.i] != close
                pyfail(p)
            end
        end
    elseif c == '{'
        p.i += 1
        out = Dict{String,Any}()
        while true
            pyskip!(p)
            p.i > length(p.c) && pyfail(p)
            p.c[p.i] == '}' && (p.i += 1; return out)
            k = pyvalue!(p)
            pyskip!(p)
            (p.i <= length(p.c) && p.c[p.i] == ':') || pyfail(p)
            p.i += 1
            out[string(k)] = pyvalue!(p)
            pyskip!(p)
            p.i > length(p.c) && pyfail(p)
            if p.c[p.i] == ','
                p.i += 1
            elseif p.c[p.i] != '}'
                pyfail(p)
            end
        end
    elseif c == '\'' || c == '"'
        p.i += 1
        buf = IOBuffer()
        while p.i <= length(p.c) && p.c[p.i] != c
            if p.c[p.i] == '\\' && p.i < length(p.c)
                p.i += 1
                e = p.c[p.i]
                write(buf, e == 'n' ? '\n' : e == 't' ? '\t' : e)
            else
                write(buf, p.c[p.i])
            end
            p.i += 1
        end
        p.i > length(p.c) && pyfail(p)
        p.i += 1
        return String(take!(buf))
    else
        j = p.i
        while p.i <= length(p.c) && !(p.c[p.i] in (',', ']', ')', '}', ':')) && !isspace(p.c[p.i])
            p.i += 1
        end
        word = String(p.c[j:p.i-1])
        word == "True" && return true
        word == "False" && return false
        word == "None" && return nothing
        n = tryparse(Int, word)
        n === nothing || return n
        f = tryparse(Float64, word)
        f === nothing || return f
        pyfail(p)
    end
end
