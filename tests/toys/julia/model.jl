# Toy model for the image tests (the same behaviour as ../python/model.py and ../r/model.R).
# Training: hyperparameter `mode` = "ok" (a model), "fail" (errors with "toy exploded"), "slow"
# (prints "fitting", then runs until SIGTERM; `checkpoint` writes ckpt.txt = "saved").
# Serving: `load` waits TOY_LOAD_SECONDS; `predict` sums each row of 2 features, after sleeping
# -X[1, 1] seconds when that value is negative.

struct Toy end

hyperparameters(::Type{Toy}) = (mode = "ok",)

function fit(::Type{Toy}, data, hp)
    hp.mode == "fail" && error("toy exploded")
    if hp.mode == "slow"
        println("fitting"); flush(stdout)
        for _ in 1:6000; sleep(0.1); end
    end
    return Toy()
end

checkpoint(::Type{Toy}, dir) = write(joinpath(dir, "ckpt.txt"), "saved")

function load(::Type{Toy}, dir::AbstractString)
    sleep(parse(Float64, get(ENV, "TOY_LOAD_SECONDS", "0")))
    return Toy()
end

n_features(::Toy) = 2

function predict(::Toy, X)
    X[1, 1] < 0 && sleep(-X[1, 1])
    return vec(sum(X; dims = 2))
end
