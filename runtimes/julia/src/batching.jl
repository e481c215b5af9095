# Adaptive batching (D9, issue 20): concurrent requests to ONE row-wise model are stacked into one
# `predict` call and split back by row counts. The request that finds the model idle predicts at
# once (nothing is ever delayed at c=1); requests that arrive while it predicts queue up, and the
# next free predictor takes them as one batch (same width, at most ROSETTA_BATCH_MAX_ROWS rows).
# A batch that throws, or answers a wrong number of rows, is predicted again request by request,
# so a bad row fails only its own request. Requests are decoded (and rejected) before they queue;
# encoding and content negotiation happen per request after the split. Each model has its own
# batcher (multi-model mode: never across models); threads of one server share it.

"A decoded request waiting for a batch: its rows, and where its result goes."
struct Pending
    X::Matrix{Float64}
    result::Channel{Any}
end

"""
    Batcher()

The queue of one model: `busy` while a predict of that model runs; `calls`/`requests` count
predict calls and requests served through it (logged at shutdown).
"""
mutable struct Batcher
    lock::ReentrantLock
    busy::Bool
    queue::Vector{Pending}
    calls::Threads.Atomic{Int}
    requests::Threads.Atomic{Int}
end
Batcher() = Batcher(ReentrantLock(), false, Pending[], Threads.Atomic{Int}(0), Threads.Atomic{Int}(0))

"""
    predict_batched(b, model, X, max_rows, wait_ms) -> predictions or a 500 `Response`

What `user_call_or_500(predict, model, X)` answers, through the model's batcher.
"""
function predict_batched(b::Batcher, model, X::Matrix{Float64}, max_rows::Int, wait_ms::Int)
    Threads.atomic_add!(b.requests, 1)
    lock(b.lock)
    if b.busy
        p = Pending(X, Channel{Any}(1))
        push!(b.queue, p)
        unlock(b.lock)
        return take!(p.result)
    end
    b.busy = true
    unlock(b.lock)
    out = try
        Threads.atomic_add!(b.calls, 1)
        user_call_or_500(predict, model, X)     # idle: at once, alone
    finally
        hand_over(b, model, max_rows, wait_ms)
    end
    return out
end

"The model is free again: drain what queued meanwhile on a worker thread, or mark it idle."
function hand_over(b::Batcher, model, max_rows::Int, wait_ms::Int)
    lock(b.lock)
    if isempty(b.queue)
        b.busy = false
        unlock(b.lock)
    else
        unlock(b.lock)                          # still busy: the drain owns the model now
        start_on_worker(() -> drain(b, model, max_rows, wait_ms))
    end
    return nothing
end

"Predict queued requests batch after batch until the queue is empty."
function drain(b::Batcher, model, max_rows::Int, wait_ms::Int)
    while true
        wait_ms > 0 && sleep(wait_ms / 1000)     # let a batch fill up (off by default)
        batch = lock(b.lock) do
            isempty(b.queue) && (b.busy = false; return Pending[])
            take_batch!(b.queue, max_rows)
        end
        isempty(batch) && return nothing
        run_batch(b, model, batch)
    end
end

"The next batch: the oldest request, then the following ones of the same width up to `max_rows` rows."
function take_batch!(queue::Vector{Pending}, max_rows::Int)
    width = size(queue[1].X, 2)
    batch = Pending[]
    rows = 0
    i = 1
    while i <= length(queue)
        p = queue[i]
        n = size(p.X, 1)
        if size(p.X, 2) == width && (isempty(batch) || rows + n <= max_rows)
            push!(batch, p)
            rows += n
            deleteat!(queue, i)
        else
            i += 1
        end
    end
    return batch
end

"One predict call for the batch, split back; on any failure, one call per request."
function run_batch(b::Batcher, model, batch::Vector{Pending})
    try
        if length(batch) > 1
            X = reduce(vcat, [p.X for p in batch])
            Threads.atomic_add!(b.calls, 1)
            preds = try
                call_user(predict, model, X)
            catch e
                e isa InterruptException && rethrow()
                nothing                              # retried request by request below
            end
            parts = preds === nothing ? nothing : split_rows(preds, [size(p.X, 1) for p in batch])
            if parts !== nothing
                for (p, part) in zip(batch, parts)
                    put!(p.result, part)
                end
                return nothing
            end
        end
        for p in batch
            Threads.atomic_add!(b.calls, 1)
            put!(p.result, user_call_or_500(predict, model, p.X))
        end
    catch e                                          # never leave a request waiting
        for p in batch
            isready(p.result) || put!(p.result, text_error(500, "internal error"))
        end
        @error "batch failed" exception = (e, catch_backtrace())
    end
    return nothing
end

"""
    split_rows(preds, counts) -> parts or nothing

The predictions of a stacked matrix split back into consecutive blocks of `counts` rows (a
vector: its elements; a matrix: its rows); `nothing` when `preds` does not have one result
per row (then the batch is retried request by request and each gets its own error).
"""
function split_rows(preds, counts::Vector{Int})
    n = nresults(preds)
    (n === nothing || n != sum(counts)) && return nothing
    preds isa Union{AbstractVector,AbstractMatrix} || return nothing
    parts = Any[]
    start = 1
    for c in counts
        r = start:start+c-1
        push!(parts, preds isa AbstractMatrix ? preds[r, :] : preds[r])
        start += c
    end
    return parts
end
