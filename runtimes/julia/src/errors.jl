# The runtime's exceptions: each maps to one HTTP status (serving) or one failure-file kind
# (training, T-17), and the one-line message users see (S-16, S-17).

"""
    HyperparameterError(msg)

A hyperparameter that cannot be decoded; `msg` names the key, the value and the expected type
(failure kind `HyperparameterError`).
"""
struct HyperparameterError <: Exception
    msg::String
end
Base.showerror(io::IO, e::HyperparameterError) = print(io, e.msg)

"""
    DataError(msg)

A missing or empty channel, or a CSV file that cannot be read (failure kind `DataError`).
"""
struct DataError <: Exception
    msg::String
end
Base.showerror(io::IO, e::DataError) = print(io, e.msg)

"""
    ModelError(msg)

The model directory cannot be read (missing or corrupt model file): serving exits non-zero
with `msg`, without a backtrace (S-02).
"""
struct ModelError <: Exception
    msg::String
end
Base.showerror(io::IO, e::ModelError) = print(io, e.msg)

"""
    UserCodeError(exception, backtrace)

An exception raised by user code (failure kind `UserCodeError`; HTTP 500 when serving).
"""
struct UserCodeError <: Exception
    exception::Any
    backtrace::Any
end
Base.showerror(io::IO, e::UserCodeError) = print(io, exception_line(e.exception))

"""
    BadRequest(msg)

A request the runtime cannot decode → HTTP 400 with `msg`.
"""
struct BadRequest <: Exception
    msg::String
end
Base.showerror(io::IO, e::BadRequest) = print(io, e.msg)

"The exceptions the runtime raises itself: user code passes them through unchanged."
const RuntimeErrors = Union{DataError,HyperparameterError,ModelError,UserCodeError,BadRequest}

"`TypeName: first line of the message`, as the failure file's first line quotes it."
function exception_line(e)
    msg = first(split(sprint(showerror, e), '\n'))
    name = string(nameof(typeof(e)))
    return startswith(msg, name) ? msg : "$name: $msg"
end

"""
    error_message(e; limit = 200) -> String

The first line of an exception's message, at most `limit` characters, without the exception's
type name (it differs per language): what `400 cannot decode payload: …` and
`500 model error: …` quote (D3).
"""
function error_message(e; limit::Integer = 200)
    e = e isa UserCodeError ? e.exception : e
    msg = hasfield(typeof(e), :msg) && getfield(e, :msg) isa AbstractString ? String(getfield(e, :msg)) :
          sprint(showerror, e)
    name = string(nameof(typeof(e)))
    startswith(msg, name * ": ") && (msg = msg[sizeof(name)+3:end])
    line = strip(first(split(msg, '\n')))
    return length(line) > limit ? first(line, limit) : String(line)
end
