# The constant model of the cross-language table: the same fixed vector for every row, in all three
# languages (bench/models/constant/{python,r,julia}), so the table compares servers, not models.
struct ConstantModel
    constant::Vector{Float64}
end

fit(::Type{ConstantModel}, data, hp) = ConstantModel([0.25, 0.25, 0.5])

predict(m::ConstantModel, X::Matrix{Float64}) = repeat(permutedims(m.constant), size(X, 1))

# one fixed row per input row: row-wise by construction (D9); an image without batching has no such hook
if isdefined(Rosetta, :rowwise)
    Rosetta.rowwise(::Type{ConstantModel}) = true
end
