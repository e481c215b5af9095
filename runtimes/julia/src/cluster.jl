# The training cluster as SageMaker describes it in resourceconfig.json (T-05, T-22, D7).

const DEFAULT_HOST = "algo-1"
const DEFAULT_INTERFACE = "eth0"

"""
    Cluster(hosts, current_host, is_first, network_interface)

The hosts of this training job and this host's place among them: `hosts` sorted by code point
(`algo-10` before `algo-2`) as the training toolkit sorts them; `is_first` says whether this host
is the first of them (the toolkit's master host, the one that usually runs a tracker or writes
the model). See [`cluster`](@ref).
"""
struct Cluster
    hosts::Vector{String}
    current_host::String
    is_first::Bool
    network_interface::String
end

"""
    Cluster(doc)

From the parsed resourceconfig.json; `nothing` (no file) is the single host `algo-1` on `eth0`.
"""
function Cluster(doc::Union{AbstractDict,Nothing})
    doc === nothing && (doc = Dict{String,Any}())
    current = get(doc, "current_host", nothing)
    current = current isa AbstractString && !isempty(current) ? String(current) : DEFAULT_HOST
    listed = get(doc, "hosts", nothing)
    hosts = listed isa AbstractVector && !isempty(listed) ? sort!(String[string(h) for h in listed]) : [current]
    interface = get(doc, "network_interface_name", nothing)
    interface = interface isa AbstractString && !isempty(interface) ? String(interface) : DEFAULT_INTERFACE
    return Cluster(hosts, current, current == hosts[1], interface)
end

"resourceconfig.json as a Dict, `nothing` when the file is absent; a `DataError` when it is not a JSON object."
function read_resourceconfig()
    file = config_file("resourceconfig.json")
    isfile(file) || return nothing
    doc = try
        parse_json(read(file, String))
    catch e
        e isa JSONError || rethrow()
        throw(DataError("resourceconfig.json is not valid JSON: $(e.msg)"))
    end
    doc isa AbstractDict || throw(DataError("resourceconfig.json must hold an object"))
    return doc
end

"""
    cluster() -> Cluster

This job's cluster, from /opt/ml/input/config/resourceconfig.json (the single host `algo-1` on
`eth0` without one). Call it in `fit` to split work between hosts.
"""
cluster() = Cluster(read_resourceconfig())
