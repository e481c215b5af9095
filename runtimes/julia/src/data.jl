# Training data: channels (T-04, T-07) as tables with a header row. Channels are read lazily,
# on first `data[channel]`, and never written to (they may be read-only, T-08).

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

What `fit` receives: `data[channel]` is a [`Table`](@ref) of every `.csv` file of the channel
(recursively, sorted by relative path, one header; see [`read_channel`](@ref));
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

"""
    channel_files(dir) -> Vector{String}

Every non-hidden regular file under `dir`, recursively, as paths relative to `dir` with `/`,
sorted by code point (D4). A file is hidden when its NAME starts with `.` (the same rule in
every runtime: a file inside a hidden folder counts).
"""
function channel_files(dir::AbstractString)
    out = String[]
    for (root, _, files) in walkdir(dir; follow_symlinks = true)
        for f in files
            startswith(f, ".") || push!(out, relpath(joinpath(root, f), dir))
        end
    end
    return sort!(out)
end

"Whether a channel file belongs to the channel's table: its name ends in `.csv`, any case (D4)."
is_csv(file::AbstractString) = endswith(lowercase(file), ".csv")

"""
    read_channel(ch, dir) -> Table

Every `.csv` file of the channel (D4: recursively, sorted by relative path, hidden ones skipped)
concatenated into one Table; every file must have the same header. Other files are ignored here
(they are reachable through `datapath`).
"""
function read_channel(ch::AbstractString, dir::AbstractString)
    all_files = channel_files(dir)
    files = filter(is_csv, all_files)
    if isempty(files)
        found = isempty(all_files) ? "nothing" : join(all_files, ", ")
        throw(DataError("channel '$ch' has no .csv files (found: $found)"))
    end
    header = String[]
    first_file = ""
    parts = Matrix{Any}[]
    for f in files
        path = joinpath(dir, f)
        filesize(path) == 0 && continue
        local cells, hdr
        try
            cells, hdr = readdlm(path, ',', Any, '\n'; header = true, quotes = true)
        catch e
            throw(DataError("channel '$ch': cannot read $f as CSV: $(sprint(showerror, e))"))
        end
        h = String[strip(string(x)) for x in vec(hdr)]
        if isempty(header)
            header, first_file = h, f
        elseif h != header
            throw(DataError("channel '$ch': $f has columns $(join(h, ", ")) but $first_file has $(join(header, ", "))"))
        end
        push!(parts, map(x -> x isa AbstractString ? String(x) : x, cells))
    end
    isempty(parts) && throw(DataError("channel '$ch' is empty"))
    rows = reduce(vcat, parts)
    size(rows, 1) == 0 && throw(DataError("channel '$ch' has a header but no rows"))
    return Table(header, rows)
end

"""
    tables_read(data) -> Dict{String,Table}

The tables user code read (`data[channel]`) so far: what decides the request columns (D2).
"""
tables_read(d::Data) = d.cache

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
        for ch in sort!(collect(keys(conf)))
            dir = channel_dir(ch)
            isdir(dir) || throw(DataError("channel '$ch' is configured but $(data_root()) has no such folder"))
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
