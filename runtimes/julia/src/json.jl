# A small JSON reader/writer (RFC 8259). The Julia 1.5 standard library has none, and no
# package can be installed offline. Limits: nesting depth (default 32, as the contract's
# request decoding), numbers become Int64 when integral in form and in range, else Float64;
# objects become Dict{String,Any} (duplicate keys: the last wins); null → nothing.

"""
    JSONError(msg)

Malformed JSON; `msg` says what and where (byte offset).
"""
struct JSONError <: Exception
    msg::String
end
Base.showerror(io::IO, e::JSONError) = print(io, e.msg)

mutable struct JSONReader
    s::Vector{UInt8}
    i::Int
    maxdepth::Int
end

"""
    parse_json(text; maxdepth = 32) -> Any

Parse one JSON value (surrounding whitespace allowed). Arrays → `Vector{Any}`, objects →
`Dict{String,Any}`, `null` → `nothing`. Throws [`JSONError`](@ref).
"""
parse_json(text::AbstractString; maxdepth::Integer = 32) = parse_json(Vector{UInt8}(codeunits(String(text))); maxdepth = maxdepth)
function parse_json(bytes::AbstractVector{UInt8}; maxdepth::Integer = 32)
    r = JSONReader(bytes isa Vector{UInt8} ? bytes : Vector{UInt8}(bytes), 1, maxdepth)
    skip_ws!(r)
    v = read_value!(r, 0)
    skip_ws!(r)
    r.i <= length(r.s) && jerr(r, "unexpected trailing data")
    return v
end

jerr(r::JSONReader, msg) = throw(JSONError(string(msg, " at byte ", r.i)))

@inline function skip_ws!(r::JSONReader)
    s = r.s
    @inbounds while r.i <= length(s) && (s[r.i] == 0x20 || s[r.i] == 0x0a || s[r.i] == 0x0d || s[r.i] == 0x09)
        r.i += 1
    end
end

function read_value!(r::JSONReader, depth::Int)
    r.i > length(r.s) && jerr(r, "unexpected end of input")
    c = r.s[r.i]
    if c == UInt8('{')
        return read_object!(r, depth + 1)
    elseif c == UInt8('[')
        return read_array!(r, depth + 1)
    elseif c == UInt8('"')
        return read_string!(r)
    elseif c == UInt8('-') || UInt8('0') <= c <= UInt8('9')
        return read_number!(r)
    elseif literal!(r, "true")
        return true
    elseif literal!(r, "false")
        return false
    elseif literal!(r, "null")
        return nothing
    end
    jerr(r, "unexpected character '$(Char(c))'")
end

function literal!(r::JSONReader, word::String)
    n = sizeof(word)
    r.i + n - 1 <= length(r.s) || return false
    @inbounds for k in 1:n
        r.s[r.i+k-1] == codeunit(word, k) || return false
    end
    r.i += n
    return true
end

function read_array!(r::JSONReader, depth::Int)
    depth > r.maxdepth && jerr(r, "nesting deeper than $(r.maxdepth)")
    r.i += 1
    out = Any[]
    skip_ws!(r)
    if r.i <= length(r.s) && r.s[r.i] == UInt8(']')
        r.i += 1
        return out
    end
    while true
        skip_ws!(r)
        push!(out, read_value!(r, depth))
        skip_ws!(r)
        r.i > length(r.s) && jerr(r, "unterminated array")
        c = r.s[r.i]
        r.i += 1
        c == UInt8(']') && return out
        c == UInt8(',') || (r.i -= 1; jerr(r, "expected ',' or ']'"))
    end
end

function read_object!(r::JSONReader, depth::Int)
    depth > r.maxdepth && jerr(r, "nesting deeper than $(r.maxdepth)")
    r.i += 1
    out = Dict{String,Any}()
    skip_ws!(r)
    if r.i <= length(r.s) && r.s[r.i] == UInt8('}')
        r.i += 1
        return out
    end
    while true
        skip_ws!(r)
        (r.i <= length(r.s) && r.s[r.i] == UInt8('"')) || jerr(r, "expected a string key")
        key = read_string!(r)
        skip_ws!(r)
        (r.i <= length(r.s) && r.s[r.i] == UInt8(':')) || jerr(r, "expected ':'")
        r.i += 1
        skip_ws!(r)
        out[key] = read_value!(r, depth)
        skip_ws!(r)
        r.i > length(r.s) && jerr(r, "unterminated object")
        c = r.s[r.i]
        r.i += 1
        c == UInt8('}') && return out
        c == UInt8(',') || (r.i -= 1; jerr(r, "expected ',' or '}'"))
    end
end

function hex4!(r::JSONReader)
    r.i + 3 <= length(r.s) || jerr(r, "bad \\u escape")
    v = 0
    for _ in 1:4
        c = r.s[r.i]
        d = UInt8('0') <= c <= UInt8('9') ? c - UInt8('0') :
            UInt8('a') <= c <= UInt8('f') ? c - UInt8('a') + 10 :
            UInt8('A') <= c <= UInt8('F') ? c - UInt8('A') + 10 : jerr(r, "bad \\u escape")
        v = 16v + d
        r.i += 1
    end
    return v
end

function read_string!(r::JSONReader)
    s = r.s
    r.i += 1
    start = r.i
    # fast path: no escapes
    @inbounds while r.i <= length(s)
        c = s[r.i]
        if c == UInt8('"')
            str = String(s[start:r.i-1])
            r.i += 1
            isvalid(str) || jerr(r, "invalid UTF-8 in string")
            return str
        elseif c == UInt8('\\')
            break
        elseif c < 0x20
            jerr(r, "control character in string")
        end
        r.i += 1
    end
    io = IOBuffer()
    write(io, view(s, start:r.i-1))
    while true
        r.i > length(s) && jerr(r, "unterminated string")
        c = s[r.i]
        if c == UInt8('"')
            r.i += 1
            str = String(take!(io))
            isvalid(str) || jerr(r, "invalid UTF-8 in string")
            return str
        elseif c < 0x20
            jerr(r, "control character in string")
        elseif c == UInt8('\\')
            r.i += 1
            r.i > length(s) && jerr(r, "unterminated string")
            e = s[r.i]
            r.i += 1
            if e == UInt8('"') || e == UInt8('\\') || e == UInt8('/')
                write(io, e)
            elseif e == UInt8('b'); write(io, '\b')
            elseif e == UInt8('f'); write(io, '\f')
            elseif e == UInt8('n'); write(io, '\n')
            elseif e == UInt8('r'); write(io, '\r')
            elseif e == UInt8('t'); write(io, '\t')
            elseif e == UInt8('u')
                u = hex4!(r)
                if 0xd800 <= u <= 0xdbff                      # a UTF-16 surrogate pair
                    (r.i + 1 <= length(s) && s[r.i] == UInt8('\\') && s[r.i+1] == UInt8('u')) ||
                        jerr(r, "lone surrogate in \\u escape")
                    r.i += 2
                    lo = hex4!(r)
                    0xdc00 <= lo <= 0xdfff || jerr(r, "bad surrogate pair")
                    u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00)
                elseif 0xdc00 <= u <= 0xdfff
                    jerr(r, "lone surrogate in \\u escape")
                end
                write(io, Char(u))
            else
                r.i -= 1
                jerr(r, "bad escape")
            end
        else
            write(io, c)
            r.i += 1
        end
    end
end

@inline isdigitbyte(c::UInt8) = UInt8('0') <= c <= UInt8('9')

function read_number!(r::JSONReader)
    s, start = r.s, r.i
    n = length(s)
    isfloat = false
    r.i <= n && s[r.i] == UInt8('-') && (r.i += 1)
    (r.i <= n && isdigitbyte(s[r.i])) || jerr(r, "bad number")
    if s[r.i] == UInt8('0')
        r.i += 1
        r.i <= n && isdigitbyte(s[r.i]) && jerr(r, "bad number (leading zero)")
    else
        while r.i <= n && isdigitbyte(s[r.i]); r.i += 1; end
    end
    if r.i <= n && s[r.i] == UInt8('.')
        isfloat = true
        r.i += 1
        (r.i <= n && isdigitbyte(s[r.i])) || jerr(r, "bad number (digit expected after '.')")
        while r.i <= n && isdigitbyte(s[r.i]); r.i += 1; end
    end
    if r.i <= n && (s[r.i] == UInt8('e') || s[r.i] == UInt8('E'))
        isfloat = true
        r.i += 1
        r.i <= n && (s[r.i] == UInt8('+') || s[r.i] == UInt8('-')) && (r.i += 1)
        (r.i <= n && isdigitbyte(s[r.i])) || jerr(r, "bad number (digit expected in exponent)")
        while r.i <= n && isdigitbyte(s[r.i]); r.i += 1; end
    end
    str = String(s[start:r.i-1])
    if !isfloat
        v = tryparse(Int64, str)
        v === nothing || return v
    end
    v = tryparse(Float64, str)
    # out of Float64's range (1e999, 1e-999): ±Inf or 0.0, as other JSON readers; callers check finiteness
    return v === nothing ? Float64(parse(BigFloat, str)) : v
end

# ---------------------------------------------------------------------------------------
# Writer

"""
    json(x) -> String

Serialize `x`: `AbstractDict`/`NamedTuple` → object, `AbstractVector`/`Tuple`/1-row
matrices as nested arrays, `AbstractString`/`Symbol`/`Char` → string, `Real` → number
(non-finite → `null`, since JSON has no NaN), `nothing`/`missing` → `null`.
"""
json(x) = (io = IOBuffer(); write_json(io, x); String(take!(io)))

write_json(io::IO, ::Nothing) = print(io, "null")
write_json(io::IO, ::Missing) = print(io, "null")
write_json(io::IO, x::Bool) = print(io, x ? "true" : "false")
write_json(io::IO, x::Integer) = print(io, x)
function write_json(io::IO, x::AbstractFloat)
    isfinite(x) || return print(io, "null")
    if x isa Float64
        print(io, x)                                           # shortest round-trip form
    elseif x isa Union{Float32,Float16}
        print(io, replace(string(Float32(x)), 'f' => 'e'))     # "1.0f-5" is not JSON
    else
        print(io, Float64(x))
    end
end
write_json(io::IO, x::Real) = write_json(io, Float64(x))
write_json(io::IO, x::Symbol) = write_json(io, String(x))
write_json(io::IO, x::AbstractChar) = write_json(io, string(x))
function write_json(io::IO, s::AbstractString)
    write(io, '"')
    for c in s
        if c == '"'
            write(io, "\\\"")
        elseif c == '\\'
            write(io, "\\\\")
        elseif c == '\n'
            write(io, "\\n")
        elseif c == '\r'
            write(io, "\\r")
        elseif c == '\t'
            write(io, "\\t")
        elseif c < ' ' || c == '\u7f'
            print(io, "\\u", string(UInt16(c), base = 16, pad = 4))
        else
            write(io, c)
        end
    end
    write(io, '"')
end
function write_json(io::IO, v::Union{AbstractVector,Tuple})
    write(io, '[')
    first = true
    for x in v
        first || write(io, ',')
        first = false
        write_json(io, x)
    end
    write(io, ']')
end
function write_json(io::IO, m::AbstractMatrix)     # rows, as the contract's records
    write(io, '[')
    for i in 1:size(m, 1)
        i > 1 && write(io, ',')
        write_json(io, view(m, i, :))
    end
    write(io, ']')
end
function write_json(io::IO, d::Union{AbstractDict,NamedTuple})
    write(io, '{')
    first = true
    for (k, v) in pairs(d)
        first || write(io, ',')
        first = false
        write_json(io, string(k))
        write(io, ':')
        write_json(io, v)
    end
    write(io, '}')
end
write_json(io::IO, x) = write_json(io, string(x))
