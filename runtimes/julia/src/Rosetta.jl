"""
    Rosetta

SageMaker training and serving for plain Julia models, on the standard library only.
A user's `model.jl` defines a type `M` and methods of [`fit`](@ref) and [`predict`](@ref)
(optionally [`hyperparameters`](@ref), [`save`](@ref)/[`load`](@ref), [`input_fn`](@ref),
[`output_fn`](@ref), [`checkpoint`](@ref), [`feature_names`](@ref), [`n_features`](@ref));
training code may call [`cluster`](@ref), [`save_checkpoint`](@ref)/[`load_checkpoint`](@ref);
`train` and `serve` do the rest. See the README for the contract.
"""
module Rosetta

using Base64, Dates, DelimitedFiles, Logging, Serialization, Sockets

export fit, predict, hyperparameters, feature_names, n_features, save, load, input_fn, output_fn, checkpoint,
       log_metric, Table, Data, column, features, datapath, channels, cluster, Cluster,
       checkpoint_dir, save_checkpoint, load_checkpoint, rowwise

include("paths.jl")            # /opt/ml layout, ServingSettings (environment read once)
include("errors.jl")           # the runtime's exceptions and the messages users see
include("json.jl")             # JSON reader/writer
include("failure.jl")          # the failure file (T-17)
include("hyperparameters.jl")  # typed hyperparameters (T-01, T-02, D4)
include("data.jl")             # channels as tables (T-04, T-07, D4)
include("environment.jl")      # the training toolkit's SM_* variables (E-01..E-13)
include("cluster.jl")          # the training cluster, resourceconfig.json (T-05, D7)
include("checkpoints.jl")      # checkpoint folder, save/load (T-13, D8)
include("user.jl")             # the user's generic functions, finding the model type
include("codecs.jl")           # ONE codec registry (415/406/400)
include("http.jl")             # HTTP/1.1 server
include("batching.jl")         # adaptive batching of row-wise models (D9)
include("routes.jl")           # ONE routing table
include("multimodel.jl")       # multi-model mode (D6)
include("train.jl")            # `train` entry
include("serve.jl")            # `serve` entry
include("precompile.jl")       # the serving path, run once while precompiling (start-up time)

end # module
