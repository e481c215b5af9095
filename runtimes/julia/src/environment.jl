# The training toolkit's `SM_*` environment, for user code that expects it (E-01..E-13):
# valued as sagemaker-training-toolkit writes them (strings; JSON for the rest).

env_value(v) = v === nothing ? "" : v isa AbstractString ? String(v) : v isa Symbol ? String(v) : json(v)

"""
    toolkit_env(data, hyperparameters, resource, data_config) -> Dict{String,String}

The variables the toolkit sets. `hyperparameters` are the ones GIVEN in hyperparameters.json,
typed, SageMaker's own keys (`sagemaker_*`, `_tuning_objective_metric`) already left out (D4):
`SM_HPS` and `SM_HP_<NAME>` carry only those, never the declared defaults.
"""
function toolkit_env(data::Data, hyperparameters::AbstractDict, resource::AbstractDict, data_config::AbstractDict)
    env = Dict{String,String}(
        "SM_MODEL_DIR" => model_dir(),
        "SM_CHANNELS" => json(channels(data)),
        "SM_HPS" => json(hyperparameters),
        "SM_OUTPUT_DATA_DIR" => output_data_dir(),
        "SM_OUTPUT_DIR" => output_dir(),
        "SM_OUTPUT_INTERMEDIATE_DIR" => joinpath(output_dir(), "intermediate"),
        "SM_INPUT_DIR" => input_dir(),
        "SM_INPUT_CONFIG_DIR" => config_dir(),
        "SM_NUM_CPUS" => string(Sys.CPU_THREADS),
        "SM_NUM_GPUS" => "0",
        "SM_HOSTS" => json(get(resource, "hosts", Any[])),
        "SM_CURRENT_HOST" => string(get(resource, "current_host", "")),
        "SM_NETWORK_INTERFACE_NAME" => string(get(resource, "network_interface_name", "eth0")),
        "SM_RESOURCE_CONFIG" => json(resource),
        "SM_INPUT_DATA_CONFIG" => json(data_config),
    )
    for ch in channels(data)
        env["SM_CHANNEL_" * uppercase(ch)] = datapath(data, ch)
    end
    for (k, v) in hyperparameters
        env["SM_HP_" * uppercase(string(k))] = env_value(v)
    end
    return env
end

"""
    set_toolkit_env!(env)

Put `env` into `ENV`; `SM_HP_*` variables of an earlier run in this process are removed first
(a variable must name a hyperparameter given to this run).
"""
function set_toolkit_env!(env::AbstractDict)
    for k in collect(keys(ENV))
        startswith(k, "SM_HP_") && delete!(ENV, k)
    end
    for (k, v) in env
        ENV[k] = v
    end
    return nothing
end
