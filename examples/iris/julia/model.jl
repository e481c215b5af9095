# Iris with multinomial logistic regression in plain Julia: all the user writes for Rosetta.
using LinearAlgebra, Statistics

struct IrisModel
    mu::Matrix{Float64}; sigma::Matrix{Float64}   # standardization (1 × features)
    W::Matrix{Float64}                            # (features + 1) × classes
    classes::Vector{String}
end

hyperparameters(::Type{IrisModel}) = (epochs = 500, lr = 0.5, l2 = 1e-3, target = "species")

softmax(Z) = (E = exp.(Z .- maximum(Z; dims = 2)); E ./ sum(E; dims = 2))
design(m, X) = hcat((X .- m.mu) ./ m.sigma, ones(size(X, 1)))

function fit(::Type{IrisModel}, data, hp)
    t = data["train"]
    X, y = features(t; exclude = hp.target), column(t, hp.target)
    classes = sort(unique(y))
    Y = Float64.(y .== permutedims(classes))                  # one-hot
    m = IrisModel(mean(X; dims = 1), std(X; dims = 1) .+ 1e-9, zeros(size(X, 2) + 1, length(classes)), classes)
    A = design(m, X)
    for _ in 1:hp.epochs                                      # gradient descent on cross-entropy
        m.W .-= hp.lr .* (A' * (softmax(A * m.W) .- Y) ./ size(X, 1) .+ hp.l2 .* m.W)
    end
    log_metric("train_accuracy", mean(predict(m, X) .== y))
    return m
end

predict(m::IrisModel, X) = m.classes[[argmax(r) for r in eachrow(design(m, X) * m.W)]]
rowwise(::Type{IrisModel}) = true   # each row is predicted on its own: concurrent requests may share one call (D9)
# Requests carry the training columns minus `target` (the runtime records them in rosetta.json);
# a model that used other columns would declare them: feature_names(m::IrisModel) = [...]
