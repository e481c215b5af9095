# Training data: channels (T-04, T-07) as tables with a header row. Channels are read lazily,
# on first `data[channel]`, and never written to (they may be read-only, T-08).

"""
    DataError(msg)

A missing or empty channel, or a CSV file that cannot be read (failure kind `DataError`).
"""
struct DataError <: Exception
    msg::String
end
Base.showerror(io::IO, e::DataError) = print(io, e.msg)

"""
    Table(columns, rows)

One channel's CSV files: `columns::Vector{String}` (the header) and `rows::Matrix{Any}`
(numbers as `Float64`/`Int`, everything else as `String`). See [`column`](@ref) and
[`features`](@ref).
"""
struct Table
    columns::Vector{String}
    rows::Matrix{Any}
end
Base.size(t::Table) = size(t.rows)
Base.show(io::IO, t::Table) = print(io, "Table(", size(t.rows, 1), " rows: ", join(t.columns, ", "), ")")

function colindex(t::Table, name::AbstractString)
    j = findfirst(==(name), t.columns)
    j === nothing && throw(DataError("no column '$name'; columns: $(join(t.columns, ", "))"))
    return j
end

"""
    column(t::Table, name) -> Vector

The column `name`, narrowed to the element type its values share (e.g. `Vector{String}`,
`Vector{Float64}`).
"""
column(t::Table, name::AbstractString) = narrow(t.rows[:, colindex(t, name)])
narrow(v::AbstractVector) = isempty(v) ? v : all(x -> x isa Real, v) ? (all(x -> x isa Integer, v) ? Int.(v) : Float64.(v)) : identity.(v)

"""
    features(t::Table; exclude = String[]) -> Matrix{Float64}

All columns except `exclude` as a numeric matrix (records × features). A non-numeric cell
is a `DataError` naming the column.
"""
function features(t::Table; exclude = String[])
    ex = exclude isa AbstractString ? [exclude] : collect(exclude)
    cols = [j for (j, c) in enumerate(t.columns) if !(c in ex)]
    X = Matrix{Float64}(undef, size(t.rows, 1), length(cols))
    for (k, j) in enumerate(cols), i in 1:size(t.rows, 1)
        v = t.rows[i, j]
        v isa Real || throw(DataError("column '$(t.columns[j])' row $i: '$v' is not a number"))
        X[i, k] = v
    end
    return X
end
features(t::Table, exclude) = features(t; exclude = exclude)

"""
    Data

What `fit` receives: `data[channel]` is a [`Table`](@ref) of all CSV files in the channel;
`datapath(data, channel)` is the channel's directory (for other formats);
`channels(data)` lists the channel names.
"""
struct Data
    paths::Dict{String,String}
    cache::Dict{String,Table}
end
Data(paths::Dict{String,String}) = Data(paths, Dict{String,Table}())

channels(d::Data) = sort!(collect(keys(d.paths)))
Base.haskey(d::Data, ch::AbstractString) = haskey(d.paths, ch)
Base.keys(d::Data) = channels(d)
function datapath(d::Data, ch::AbstractString)
    haskey(d.paths, ch) || throw(DataError("no channel '$ch'; channels: $(join(channels(d), ", "))"))
    return d.paths[ch]
end
Base.getindex(d::Data, ch::AbstractString) = get!(() -> read_channel(ch, datapath(d, ch)), d.cache, ch)

"All regular files under `dir` (recursively, hidden ones skipped), sorted."
function channel_files(dir::AbstractString)
    out = String[]
    for (root, _, files) in walkdir(dir; follow_symlinks = true)
        for f in files
            startswith(f, ".") || push!(out, joinpath(root, f))
        end
    end
    return sort!(out)
end

"Read every CSV file of a channel into one Table; headers must agree."
function read_channel(ch::AbstractString, dir::AbstractString)
    files = filter(f -> endswith(lowercase(f), ".csv"), channel_files(dir))
    isempty(files) && throw(DataError("channel '$ch' has no CSV files in $dir"))
    header = String[]
    parts = Matrix{Any}[]
    for f in files
        filesize(f) == 0 && continue
        local cells, hdr
        try
            cells, hdr = readdlm(f, ',', Any, '\n'; header = true, quotes = true)
        catch e
            throw(DataError("cannot read $f: $(sprint(showerror, e))"))
        end
        h = String[strip(string(x)) for x in vec(hdr)]
        if isempty(header)
            header = h
        elseif h != header
            throw(DataError("$f: header $(join(h, ",")) differs from $(join(header, ","))"))
        end
        push!(parts, map(x -> x isa AbstractString ? String(x) : x, cells))
    end
    isempty(parts) && throw(DataError("channel '$ch' is empty"))
    rows = reduce(vcat, parts)
    size(rows, 1) == 0 && throw(DataError("channel '$ch' has a header but no rows"))
    return Table(header, rows)
end

"""
    discover_channels() -> Data

Channels from inputdataconfig.json (T-04) plus any directory under input/data without an
entry. A configured channel missing on disk is a `DataError`.
"""
function discover_channels()
    paths = Dict{String,String}()
    cfg = config_file("inputdataconfig.json")
    if isfile(cfg)
        conf = parse_json(read(cfg, String))
        conf isa AbstractDict || throw(DataError("inputdataconfig.json is not a JSON object"))
        for ch in keys(conf)
            dir = channel_dir(ch)
            isdir(dir) || throw(DataError("channel '$ch' is listed in inputdataconfig.json but $dir does not exist"))
            isempty(channel_files(dir)) && throw(DataError("channel '$ch' is empty ($dir has no files)"))
            paths[ch] = dir
        end
    end
    if isdir(data_root())
        for ch in readdir(data_root())
            dir = channel_dir(ch)
            isdir(dir) && !haskey(paths, ch) && (paths[ch] = dir)
        end
    end
    return Data(paths)
end
