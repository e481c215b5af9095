# Request decoding and response encoding (contract §4): ONE registry of media types, used
# for Content-Type checks (415), Accept negotiation (406), decoding (400) and encoding.

const MAX_JSON_DEPTH = 32

"""
    DecodeOptions(n_features, features, csv_header)

What the decoders know besides the request, fixed when the model is loaded: the row width
(`nothing`: any, the same in every row), the model's feature names (a CSV header row equal to
them is a header, D1) and `ROSETTA_CSV_HEADER` (a CSV request may start with a header row).
"""
struct DecodeOptions
    n_features::Union{Int,Nothing}
    features::Union{Vector{String},Nothing}
    csv_header::Bool
end
DecodeOptions() = DecodeOptions(nothing, nothing, false)

struct Codec
    decode::Function      # (body::Vector{UInt8}, opts::DecodeOptions, params::Dict) -> Matrix{Float64}
    encode::Function      # (predictions) -> Vector{UInt8}
end

# The registry; order is the order of the "accepted:" / "available:" lists in messages.
const CODEC_TYPES = ["text/csv", "application/json", "application/jsonlines"]
const ALIASES = Dict("application/x-jsonlines" => "application/jsonlines",
                     "application/jsonl" => "application/jsonlines")
const CODECS = Dict{String,Codec}()     # filled below, once the functions exist
const ACCEPTED_LIST = join(CODEC_TYPES, ", ")

"""
    media_type(header) -> (type, params)

`"Text/CSV; charset=utf-8; header=present"` → `("text/csv", Dict("charset"=>"utf-8",
"header"=>"present"))`. Aliases map to their canonical type.
"""
function media_type(header::AbstractString)
    parts = split(header, ';')
    t = lowercase(strip(parts[1]))
    params = Dict{String,String}()
    for p in parts[2:end]
        kv = split(p, '='; limit = 2)
        length(kv) == 2 && (params[lowercase(strip(kv[1]))] = strip(strip(kv[2]), '"'))
    end
    return get(ALIASES, t, t), params
end

"""
    default_accept(configured, content_type, custom_output = false) -> String

The response type when `Accept` is absent, empty or `*/*` (D3): SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT
if set and something can produce it (a codec, or the user's `output_fn`); else the request's type
if a codec exists for it; else `application/json` (the SageMaker inference toolkit's default).
"""
default_accept(configured::AbstractString, ctype::AbstractString, custom_output::Bool = false) =
    !isempty(configured) && (custom_output || haskey(CODECS, configured)) ? configured :
    haskey(CODECS, ctype) ? ctype : "application/json"

"""
    preferred(accept, default) -> Union{String,Nothing}

The first acceptable media type (highest q, ties: header order), registered or not: what the
user's `output_fn` is asked for (D3). Absent/empty/`*/*` → `default`; `type/*` → a registered type
as in [`negotiate`](@ref); `nothing` if everything has `q=0`.
"""
function preferred(accept::Union{AbstractString,Nothing}, default::AbstractString)
    (accept === nothing || isempty(strip(accept)) || strip(accept) == "*/*") && return default
    best, bestq = nothing, 0.0
    for item in split(accept, ',')
        isempty(strip(item)) && continue
        t, params = media_type(item)
        q = something(tryparse(Float64, get(params, "q", "1")), 0.0)
        if q > bestq
            cand = t == "*/*" || endswith(t, "/*") ? negotiate(item, default) : t
            cand === nothing || ((best, bestq) = (cand, q))
        end
    end
    return best
end

"""
    negotiate(accept, default) -> Union{String,Nothing}

The response type for an `Accept` header (B-06): absent/empty/`*/*` → `default`; otherwise
the acceptable registered type with the highest q (ties: header order), `q=0` excluded,
`type/*` wildcards allowed; `nothing` if none is acceptable.
"""
function negotiate(accept::Union{AbstractString,Nothing}, default::AbstractString)
    (accept === nothing || isempty(strip(accept)) || strip(accept) == "*/*") && return default
    best, bestq = nothing, 0.0
    for item in split(accept, ',')
        isempty(strip(item)) && continue
        t, params = media_type(item)
        q = something(tryparse(Float64, get(params, "q", "1")), 0.0)
        q > 0 || continue
        cand = if t == "*/*"
            default
        elseif endswith(t, "/*")                     # text/*, application/*
            prefix = t[1:end-1]
            i = findfirst(c -> startswith(c, prefix), CODEC_TYPES)
            startswith(default, prefix) ? default : i === nothing ? nothing : CODEC_TYPES[i]
        else
            haskey(CODECS, t) ? t : nothing
        end
        cand === nothing && continue
        if q > bestq
            best, bestq = cand, q
        end
    end
    return best
end

# ---------------------------------------------------------------------------------------
# Decoding

checked_utf8(body) = isvalid(String, body) ? body : throw(BadRequest("invalid UTF-8"))

@inline isblankbyte(c::UInt8) = c == 0x20 || c == 0x09 || c == 0x0d

"The fix a 400 on a non-numeric first row names (D1), when no header was expected."
const HEADER_HINT = " (a header row? send 'Content-Type: text/csv; header=present' or set ROSETTA_CSV_HEADER=true)"

"Bytes `a:b` of `s` without surrounding blanks and one pair of RFC 4180 quotes."
function trimmed_field(s::Vector{UInt8}, a::Int, b::Int)
    while a <= b && isblankbyte(s[a]); a += 1; end
    while b >= a && isblankbyte(s[b]); b -= 1; end
    if b > a && s[a] == UInt8('"') && s[b] == UInt8('"')       # RFC 4180 quoted field
        a += 1; b -= 1
    end
    return a, b
end

"""
    field_end(s, f, b) -> Int

Where the CSV field starting at byte `f` of the line ending at `b` ends: the index of its comma,
or `b + 1`. A field whose first non-blank byte is `"` runs to its closing quote (`""` is a quote
inside it), so `"4,5"` is one field (RFC 4180).
"""
function field_end(s::Vector{UInt8}, f::Int, b::Int)
    p = f
    while p <= b && isblankbyte(s[p]); p += 1; end
    if p <= b && s[p] == UInt8('"')
        q = p + 1
        while q <= b
            if s[q] == UInt8('"')
                q < b && s[q+1] == UInt8('"') ? (q += 2; continue) : break
            end
            q += 1
        end
        f = min(q + 1, b + 1)                    # after the closing quote (or the line)
    end
    c = something(findnext(==(UInt8(',')), s, f), b + 1)
    return min(c, b + 1)
end

"""
    number_syntax(s, a, b) -> Bool

Whether bytes `a:b` are a number as every Rosetta runtime reads one (D1): `[+-]` digits with an
optional fraction (or a fraction alone) and exponent, or `nan`/`inf`/`infinity` (any case). Not
hex (`0x10`), not `1_000`, not empty.
"""
function number_syntax(s::Vector{UInt8}, a::Int, b::Int)
    a > b && return false
    i = a
    (s[i] == UInt8('+') || s[i] == UInt8('-')) && (i += 1)
    i > b && return false
    if !isdigitbyte(s[i]) && s[i] != UInt8('.')                   # nan, inf, infinity
        n = b - i + 1
        (n == 3 || n == 8) || return false
        w = lowercase(unsafe_string(pointer(s, i), n))
        return w == "nan" || w == "inf" || w == "infinity"
    end
    digits = 0
    while i <= b && isdigitbyte(s[i]); i += 1; digits += 1; end
    if i <= b && s[i] == UInt8('.')
        i += 1
        while i <= b && isdigitbyte(s[i]); i += 1; digits += 1; end
    end
    digits > 0 || return false
    if i <= b && (s[i] == UInt8('e') || s[i] == UInt8('E'))
        i += 1
        i <= b && (s[i] == UInt8('+') || s[i] == UInt8('-')) && (i += 1)
        e = i
        while i <= b && isdigitbyte(s[i]); i += 1; end
        i > e || return false
    end
    return i > b
end

"Bytes `a:b` as a Float64 if they are a number ([`number_syntax`](@ref)), else `nothing`."
parse_number(s::Vector{UInt8}, a::Int, b::Int) =
    number_syntax(s, a, b) ? tryparse(Float64, unsafe_string(pointer(s, a), b - a + 1)) : nothing

"The fields of line `a:b` (trimmed, quotes removed)."
function csv_fields(s::Vector{UInt8}, a::Int, b::Int)
    out = String[]
    f = a
    while true
        c = field_end(s, f, b)
        x, y = trimmed_field(s, f, c - 1)
        push!(out, unsafe_string(pointer(s, x), max(y - x + 1, 0)))
        f = c + 1
        c > b && break
    end
    return out
end

"""
    is_header(s, a, b, features) -> Bool

Whether the first line (bytes `a:b`) of a CSV request that may carry a header IS one (D1): its
fields equal the model's feature names (when known), or some field is not a number.
"""
function is_header(s::Vector{UInt8}, a::Int, b::Int, features::Union{Vector{String},Nothing})
    fields = csv_fields(s, a, b)
    features !== nothing && fields == features && return true
    return any(f -> parse_number(Vector{UInt8}(f), 1, sizeof(f)) === nothing, fields)
end

"""
    decode_csv(body, opts, params) -> Matrix{Float64}

CSV records (B-08, B-09): `\\n` or `\\r\\n`, blank lines skipped, final newline optional, a UTF-8
BOM skipped, RFC 4180 quotes. Per row the width is checked first (`row 2 has 2 columns, expected
3`), then the values (`row 2: 'x' is not a number`, `row 1: non-finite value`). A header row is
possible only with `header=present` (or `ROSETTA_CSV_HEADER=true` and not `header=absent`), and
then only the first line is dropped, only if it is a header ([`is_header`](@ref)); a request
that is only a header is `empty payload` (D1). Without one, a non-numeric first row names the fix.
"""
function decode_csv(body::Vector{UInt8}, opts::DecodeOptions, params)
    checked_utf8(body)
    hp = lowercase(get(params, "header", ""))
    maybe_header = hp == "present" || (opts.csv_header && hp != "absent")
    first_line = maybe_header
    i = has_bom(body) ? 4 : 1
    n = length(body)
    vals = Float64[]
    nf = opts.n_features
    ncols = nf === nothing ? -1 : nf
    row = 0
    while i <= n
        j = something(findnext(==(0x0a), body, i), n + 1)
        a, b = i, j - 1
        i = j + 1
        blank = true
        for k in a:b
            isblankbyte(body[k]) || (blank = false; break)
        end
        blank && continue
        if first_line
            first_line = false
            is_header(body, a, b, opts.features) && continue
        end
        row += 1
        cols = 0
        bad, ba, bb = 0, 0, 0                # the first bad value: 1 not a number, 2 non-finite
        f = a
        while true
            c = field_end(body, f, b)
            x, y = trimmed_field(body, f, c - 1)
            v = parse_number(body, x, y)
            if v === nothing
                bad == 0 && ((bad, ba, bb) = (1, x, y))
                push!(vals, NaN)
            else
                bad == 0 && !isfinite(v) && (bad = 2)
                push!(vals, v)
            end
            cols += 1
            f = c + 1
            c > b && break
        end
        if ncols < 0
            ncols = cols
        elseif cols != ncols
            throw(BadRequest("row $row has $cols columns, expected $ncols"))
        end
        bad == 2 && throw(BadRequest("row $row: non-finite value"))
        if bad == 1
            hint = row == 1 && !maybe_header ? HEADER_HINT : ""
            throw(BadRequest(string("row ", row, ": '", unsafe_string(pointer(body, ba), max(bb - ba + 1, 0)),
                                    "' is not a number", hint)))
        end
    end
    row == 0 && throw(BadRequest("empty payload"))
    return permutedims(reshape(vals, ncols, row))
end

has_bom(body::Vector{UInt8}) = length(body) >= 3 && body[1] == 0xef && body[2] == 0xbb && body[3] == 0xbf

"A JSON value in a message: as JSON, at most 40 characters."
shown_json(v) = (t = json(v); length(t) > 40 ? first(t, 40) : t)

"Rows (vectors of JSON values) → a checked Float64 matrix: per row the width, then the values."
function rows_matrix(rows::AbstractVector, opts::DecodeOptions)
    isempty(rows) && throw(BadRequest("empty payload"))
    nf = opts.n_features
    ncols = nf === nothing ? -1 : nf
    X = nothing
    for (r, rowv) in enumerate(rows)
        rowv isa AbstractVector || throw(BadRequest("row $r: expected an array of numbers"))
        if ncols < 0
            ncols = length(rowv)
        end
        length(rowv) == ncols || throw(BadRequest("row $r has $(length(rowv)) columns, expected $ncols"))
        X === nothing && (X = Matrix{Float64}(undef, length(rows), ncols))
        for (c, v) in enumerate(rowv)
            (v isa Real && !(v isa Bool)) || throw(BadRequest("row $r: $(shown_json(v)) is not a number"))
            isfinite(v) || throw(BadRequest("row $r: non-finite value"))
            X[r, c] = v
        end
    end
    ncols == 0 && throw(BadRequest("row 1 has 0 columns"))
    return X
end

"Parse a request's JSON: `malformed JSON: …` or `JSON nested too deeply` (deeper than 32) as a 400."
function parse_json_body(bytes, prefix = "")
    try
        return parse_json(bytes; maxdepth = MAX_JSON_DEPTH)
    catch e
        e isa JSONError || rethrow()
        startswith(e.msg, "nesting deeper") && throw(BadRequest(prefix * "JSON nested too deeply"))
        throw(BadRequest("$(prefix)malformed JSON: $(e.msg)"))
    end
end

const ROWS_EXPECTED = "expected an array of rows or {\"instances\": [...]}"

"""
    decode_json(body, opts, params) -> Matrix{Float64}

`[[…], …]` (rows), `[…]` (one row) or `{"instances": …}` with either; a UTF-8 BOM skipped;
nesting ≤ 32.
"""
function decode_json(body::Vector{UInt8}, opts::DecodeOptions, params)
    checked_utf8(body)
    has_bom(body) && (body = body[4:end])
    all(isblankbyte(c) || c == 0x0a for c in body) && throw(BadRequest("empty payload"))
    v = parse_json_body(body)
    if v isa AbstractDict
        haskey(v, "instances") || throw(BadRequest(ROWS_EXPECTED))
        v = v["instances"]
    end
    v isa AbstractVector || throw(BadRequest(ROWS_EXPECTED))
    isempty(v) && throw(BadRequest("empty payload"))
    any(x -> x isa AbstractVector, v) || return rows_matrix(Any[v], opts)       # one row
    return rows_matrix(v, opts)
end

"`application/jsonlines`: one JSON array (a row) per non-blank line."
function decode_jsonlines(body::Vector{UInt8}, opts::DecodeOptions, params)
    checked_utf8(body)
    rows = Any[]
    text = String(has_bom(body) ? body[4:end] : copy(body))
    for (k, line) in enumerate(split(text, '\n'))
        isempty(strip(line)) && continue
        push!(rows, parse_json_body(line, "line $k: "))
    end
    return rows_matrix(rows, opts)
end

# ---------------------------------------------------------------------------------------
# Encoding: one output record per input record, in order (B-08)

"The predictions as records: a vector (1-D) or a vector of rows (2-D)."
records(p::AbstractMatrix) = [view(p, i, :) for i in 1:size(p, 1)]
records(p::AbstractVector) = p
records(p::Tuple) = collect(p)
records(p) = throw(ArgumentError("predict returned a $(typeof(p)); expected a vector or a matrix"))

"How many output records predictions hold (a matrix: its rows); `nothing` if they are not records."
nresults(p::AbstractMatrix) = size(p, 1)
nresults(p::Union{AbstractVector,Tuple}) = length(p)
nresults(p) = nothing

csv_cell(io::IO, x::AbstractString) = write(io, x)
csv_cell(io::IO, x::Union{AbstractVector,Tuple}) = join(io, (sprint(csv_cell, y) for y in x), ',')
csv_cell(io::IO, x::AbstractFloat) = print(io, Float64(x))
csv_cell(io::IO, x) = print(io, x)

function encode_csv(recs)
    io = IOBuffer()
    for r in recs
        csv_cell(io, r)
        write(io, '\n')
    end
    return take!(io)
end
function encode_json(recs)
    io = IOBuffer()
    write(io, "{\"predictions\":")
    write_json(io, recs)
    write(io, '}')
    return take!(io)
end
function encode_jsonlines(recs)
    io = IOBuffer()
    for r in recs
        write_json(io, r)
        write(io, '\n')
    end
    return take!(io)
end

CODECS["text/csv"] = Codec(decode_csv, encode_csv)
CODECS["application/json"] = Codec(decode_json, encode_json)
CODECS["application/jsonlines"] = Codec(decode_jsonlines, encode_jsonlines)
