# The failure file (T-16, T-17): the reason first (`Kind: message`, what SageMaker shows as
# FailureReason), a blank line, then the details; the reason is echoed on stderr.

"SageMaker shows the first 1024 characters of the failure file as FailureReason."
const REASON_LIMIT = 1024

"""
    failure_reason(e) -> (kind, message)

Classify a training failure into the contract's kinds (§3.6).
"""
function failure_reason(e)
    # a SIGTERM landing while `include` loads the user's file arrives wrapped (UserCodeError of
    # a LoadError): it is still a stop, not a user-code failure
    root_exception(e) isa InterruptException && return ("Stopped", "received SIGTERM")
    e isa HyperparameterError && return ("HyperparameterError", e.msg)
    e isa DataError && return ("DataError", e.msg)
    if e isa UserCodeError
        inner = e.exception
        inner isa OutOfMemoryError && return ("MemoryError", "out of memory")
        return ("UserCodeError", exception_line(inner))
    end
    e isa OutOfMemoryError && return ("MemoryError", "out of memory")
    return ("UserCodeError", exception_line(e))
end

"The exception behind the wrappers `UserCodeError` and `LoadError` (from `include`)."
function root_exception(e)
    while true
        if e isa UserCodeError
            e = e.exception
        elseif e isa LoadError
            e = e.error
        else
            return e
        end
    end
end

"`Kind: message` on one line, at most $REASON_LIMIT characters."
reason_line(kind, msg) = first(replace(strip(string(kind, ": ", msg)), '\n' => ' '), REASON_LIMIT)

"Write the failure file: the reason first, a blank line, then the details (T-17)."
function write_failure(reason::AbstractString, details::AbstractString)
    try
        mkpath(output_dir())
        write(failure_file(), string(reason, "\n\n", details, "\n"))
    catch e
        @error "cannot write the failure file" exception = e
    end
    println(stderr, reason)
    flush(stderr)
end
