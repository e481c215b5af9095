# A small HTTP/1.1 server on Sockets (no HTTP package exists offline). What it does, and the
# traps it avoids (see the README's "HTTP server" section):
# - keep-alive (HTTP/1.1 default; HTTP/1.0 only with `Connection: keep-alive`), pipelining;
# - `Expect: 100-continue` answered before the body is read (else clients wait ~1 s);
# - chunked request bodies; `Content-Length` in bytes; ONE write per response and TCP_NODELAY
#   (else a 40 ms Nagle/delayed-ACK stall per request);
# - limits: body (413), request line (414), header block/count (431), malformed input (400);
# - errors in a connection task are logged, never silent; SIGTERM drains in-flight requests.
# Not supported (answered with an error or ignored): HTTP/2, TLS, trailers' content, obs-fold,
# request bodies on HEAD/GET are read and ignored.

"""
    Limits(; max_body, max_line = 8192, max_header = 65536, max_headers = 100)

Request limits: body bytes (→ 413), request-line bytes (→ 414), header-block bytes and
header count (→ 431).
"""
Base.@kwdef struct Limits
    max_body::Int = 6 * 1024 * 1024
    max_line::Int = 8192
    max_header::Int = 65536
    max_headers::Int = 100
end

"""
    HTTPError(status, msg; drain = 0)

A request the server rejects before routing; the connection is closed after the answer.
`drain`: body bytes to read and discard first, so the client sees the answer, not a reset.
"""
struct HTTPError <: Exception
    status::Int
    msg::String
    drain::Int
end
HTTPError(status, msg) = HTTPError(status, msg, 0)
Base.showerror(io::IO, e::HTTPError) = print(io, e.status, " ", e.msg)

"""
    Request

`method`, `target` (as sent), `path` (without query), `version` ("HTTP/1.1"), `headers`
(lower-cased names, in order), `body` bytes, `keepalive`.
"""
mutable struct Request
    method::String
    target::String
    path::String
    version::String
    headers::Vector{Pair{String,String}}
    body::Vector{UInt8}
    keepalive::Bool
end

"The first value of header `name` (lower case), or `default`."
function header(req::Request, name::AbstractString, default = nothing)
    for (k, v) in req.headers
        k == name && return v
    end
    return default
end

"""
    Response(status, content_type, body; headers = Pair{String,String}[])

`body` is bytes or a string; `content_type` may be empty (no header).
"""
struct Response
    status::Int
    content_type::String
    body::Vector{UInt8}
    headers::Vector{Pair{String,String}}
end
Response(status::Integer, ct::AbstractString, body::AbstractString; headers = Pair{String,String}[]) =
    Response(status, ct, Vector{UInt8}(codeunits(String(body))), headers)
Response(status::Integer, ct::AbstractString, body::Vector{UInt8}; headers = Pair{String,String}[]) =
    Response(status, ct, body, headers)

"An error answer: one short `text/plain` line ending in a newline (S-17)."
text_error(status, msg; headers = Pair{String,String}[]) =
    Response(status, "text/plain; charset=utf-8", string(msg, "\n"); headers = headers)

const REASONS = Dict(100 => "Continue", 200 => "OK", 400 => "Bad Request", 404 => "Not Found",
    405 => "Method Not Allowed", 406 => "Not Acceptable", 411 => "Length Required",
    413 => "Payload Too Large", 414 => "URI Too Long", 415 => "Unsupported Media Type",
    417 => "Expectation Failed", 431 => "Request Header Fields Too Large",
    500 => "Internal Server Error", 501 => "Not Implemented", 503 => "Service Unavailable",
    505 => "HTTP Version Not Supported")
const STATUS_LINES = Dict(k => Vector{UInt8}(codeunits("HTTP/1.1 $k $v\r\n")) for (k, v) in REASONS)

# ---------------------------------------------------------------------------------------
# Reading: our own buffer over the socket, so line and body limits hold before any data is
# copied, and pipelined requests stay in the buffer for the next round.

mutable struct Conn{T<:IO}
    io::T
    buf::Vector{UInt8}
    pos::Int          # next unread byte in buf
    busy::Bool        # request bytes arrived and are not answered yet (a stop waits for it)
    served::Int       # requests answered on this connection
end
Conn(io::IO) = Conn(io, UInt8[], 1, false, 0)

buffered(c::Conn) = length(c.buf) - c.pos + 1

"Read more bytes from the socket; false at end of stream."
function fill!(c::Conn)
    if c.pos > length(c.buf)
        empty!(c.buf)
        c.pos = 1
    elseif c.pos > 65536                    # compact what was consumed
        c.buf = c.buf[c.pos:end]
        c.pos = 1
    end
    data = readavailable(c.io)
    isempty(data) && return false
    c.busy = true                           # part of a request arrived: a stop must answer it
    append!(c.buf, data)
    return true
end

"""
    read_line(c, limit, status) -> Union{String,Nothing}

One line without its CRLF/LF; `nothing` at a clean end of stream; an `HTTPError(status)`
if the line is longer than `limit`.
"""
function read_line(c::Conn, limit::Int, status::Int)
    scanned = c.pos
    while true
        i = findnext(==(0x0a), c.buf, scanned)
        if i !== nothing
            j = i - 1
            j >= c.pos && c.buf[j] == 0x0d && (j -= 1)
            j - c.pos + 1 > limit && throw(line_error(status))
            line = String(c.buf[c.pos:j])
            c.pos = i + 1
            return line
        end
        buffered(c) > limit + 1 && throw(line_error(status))
        offset = length(c.buf) + 1 - c.pos          # fill! may compact the buffer
        if !fill!(c)
            buffered(c) == 0 && return nothing
            throw(HTTPError(400, "incomplete request"))
        end
        scanned = c.pos + offset
    end
end
line_error(status) = HTTPError(status, status == 414 ? "request line too long" :
                                       status == 431 ? "header fields too large" : "bad request")

"Exactly `n` bytes (buffered first, then straight from the socket)."
function read_exact(c::Conn, n::Int)
    out = Vector{UInt8}(undef, n)
    k = min(n, buffered(c))
    k > 0 && copyto!(out, 1, c.buf, c.pos, k)
    c.pos += k
    if k < n
        GC.@preserve out unsafe_read(c.io, pointer(out, k + 1), UInt(n - k))
    end
    return out
end

"Read and throw away `n` body bytes, so a rejected client sees the answer, not a reset."
function discard!(c::Conn, n::Int)
    while n > 0
        buffered(c) == 0 && (fill!(c) || return)
        k = min(n, buffered(c))                 # never past this body: pipelined bytes stay
        c.pos += k
        n -= k
    end
end

const TOKEN_CHARS = Set(codeunits("!#\$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
istoken(s::AbstractString) = !isempty(s) && all(b -> b in TOKEN_CHARS, codeunits(s))

"""
    read_request(c, limits) -> Union{Request,Nothing}

Parse one request (`nothing` at a clean end of stream). Throws [`HTTPError`](@ref).
"""
function read_request(c::Conn, lim::Limits)
    line = ""
    while true                                   # RFC 7230 §3.5: ignore leading empty lines
        l = read_line(c, lim.max_line, 414)
        l === nothing && return nothing
        isempty(l) || (line = l; break)
    end
    parts = split(line, ' ')
    length(parts) == 3 || throw(HTTPError(400, "bad request line"))
    method, target, version = String(parts[1]), String(parts[2]), String(parts[3])
    istoken(method) || throw(HTTPError(400, "bad request line"))
    if version != "HTTP/1.1" && version != "HTTP/1.0"
        startswith(version, "HTTP/") || throw(HTTPError(400, "bad request line"))
        throw(HTTPError(505, "HTTP version not supported"))
    end
    isempty(target) && throw(HTTPError(400, "bad request line"))
    headers = Pair{String,String}[]
    total = 0
    while true
        h = read_line(c, lim.max_header, 431)
        h === nothing && throw(HTTPError(400, "incomplete request"))
        isempty(h) && break
        total += sizeof(h) + 2
        (total > lim.max_header || length(headers) >= lim.max_headers) && throw(HTTPError(431, "header fields too large"))
        (h[1] == ' ' || h[1] == '\t') && throw(HTTPError(400, "bad header line (obsolete folding)"))
        colon = findfirst(==(':'), h)
        colon === nothing && throw(HTTPError(400, "bad header line"))
        name = h[1:colon-1]
        istoken(name) || throw(HTTPError(400, "bad header name"))
        push!(headers, lowercase(name) => String(strip(h[colon+1:end])))
    end
    path = target
    if startswith(target, "http://") || startswith(target, "https://")   # absolute-form
        slash = findnext('/', target, findfirst("//", target).stop + 1)
        path = slash === nothing ? "/" : target[slash:end]
    end
    q = findfirst(==('?'), path)
    q === nothing || (path = path[1:q-1])
    req = Request(method, target, path, version, headers, UInt8[], false)
    tokens = [lowercase(strip(t)) for (k, v) in headers if k == "connection" for t in split(v, ',')]
    req.keepalive = version == "HTTP/1.1" ? !("close" in tokens) : ("keep-alive" in tokens)
    req.body = read_body(c, req, lim)
    return req
end

function expect_continue(c::Conn, req::Request)
    e = header(req, "expect")
    e === nothing && return
    lowercase(e) == "100-continue" || throw(HTTPError(417, "unsupported Expect '$e'"))
    req.version == "HTTP/1.1" && write(c.io, "HTTP/1.1 100 Continue\r\n\r\n")
end

too_large(n, limit) = "payload too large: $n bytes > limit $limit bytes"

function read_body(c::Conn, req::Request, lim::Limits)
    te = header(req, "transfer-encoding")
    cls = [v for (k, v) in req.headers if k == "content-length"]
    if te !== nothing
        isempty(cls) || throw(HTTPError(400, "both Content-Length and Transfer-Encoding"))
        lowercase(strip(te)) == "chunked" || throw(HTTPError(501, "unsupported Transfer-Encoding '$te'"))
        expect_continue(c, req)
        return read_chunked(c, lim)
    end
    isempty(cls) && return UInt8[]
    vals = unique(strip.(split(join(cls, ","), ',')))
    n = length(vals) == 1 && all(isdigit, vals[1]) && !isempty(vals[1]) ? tryparse(Int, vals[1]) : nothing
    n === nothing && throw(HTTPError(400, "bad Content-Length"))
    if n > lim.max_body                           # S-12: checked before reading
        drain = header(req, "expect") === nothing ? min(n, 16 * lim.max_body) : 0
        throw(HTTPError(413, too_large(n, lim.max_body), drain))
    end
    n == 0 && return UInt8[]
    expect_continue(c, req)
    return read_exact(c, n)
end

"A chunked body, counted against the limit while reading (over it: read on, discard, 413)."
function read_chunked(c::Conn, lim::Limits)
    out = UInt8[]
    total = 0
    while true
        line = read_line(c, 1024, 400)
        line === nothing && throw(HTTPError(400, "incomplete chunked body"))
        hex = strip(split(line, ';')[1])
        size = all(ch -> isxdigit(ch), hex) && !isempty(hex) && length(hex) <= 15 ? parse(Int, hex; base = 16) : -1
        size < 0 && throw(HTTPError(400, "bad chunk size"))
        if size == 0
            while true                               # trailers, ignored
                t = read_line(c, lim.max_header, 431)
                t === nothing && throw(HTTPError(400, "incomplete chunked body"))
                isempty(t) && break
            end
            total > lim.max_body && throw(HTTPError(413, too_large(total, lim.max_body)))
            return out
        end
        total += size
        if total > lim.max_body
            total > 16 * lim.max_body && throw(HTTPError(413, too_large(total, lim.max_body)))
            discard!(c, size)
        else
            append!(out, read_exact(c, size))
        end
        read_line(c, 2, 400) == "" || throw(HTTPError(400, "bad chunk"))
    end
end

# ---------------------------------------------------------------------------------------
# Writing: the whole response in ONE write (with TCP_NODELAY, no 40 ms stall).

function response_bytes(resp::Response, keep::Bool, head::Bool, version::AbstractString)
    io = IOBuffer(sizehint = 160 + length(resp.body))
    line = get(STATUS_LINES, resp.status, nothing)
    line === nothing ? print(io, "HTTP/1.1 ", resp.status, " Unknown\r\n") : write(io, line)
    isempty(resp.content_type) || print(io, "Content-Type: ", resp.content_type, "\r\n")
    print(io, "Content-Length: ", length(resp.body), "\r\n")       # bytes, not characters
    for (k, v) in resp.headers
        print(io, k, ": ", v, "\r\n")
    end
    if !keep
        write(io, "Connection: close\r\n")
    elseif version == "HTTP/1.0"
        write(io, "Connection: keep-alive\r\n")
    end
    write(io, "\r\n")
    head || write(io, resp.body)
    return take!(io)
end

# ---------------------------------------------------------------------------------------
# Server

"""
    Server

A listening HTTP server: `handler(req::Request)::Response` is called for every request.
Stop it with [`stop!`](@ref); [`wait_for_shutdown`](@ref) blocks until a shutdown is requested.
"""
mutable struct Server
    listener::Sockets.TCPServer
    port::Int
    handler::Any
    limits::Limits
    threaded::Bool
    conns::Set{Conn}
    lock::ReentrantLock
    stopping::Threads.Atomic{Bool}
    done::Channel{Nothing}
    accept_task::Union{Task,Nothing}
    accepted::Threads.Atomic{Int}
    inline::Any                               # req -> Bool: answered on the I/O thread itself
end

"""
    start_server(handler; host = IPv4(0), port = 8080, limits = Limits(), threaded = nthreads() > 1,
                 inline = req -> req.path == "/ping") -> Server

Listen on `host:port` (0.0.0.0 by default: `listen(port)` alone binds 127.0.0.1 only, S-05)
and accept connections in a background task. Sockets are read and written by tasks on this
thread (the I/O thread); with `threaded`, every request except those `inline` says are cheap
runs its handler on one of the other threads ([`on_worker`](@ref)), so a long prediction never
holds up the accept loop, the event loop or `/ping` (S-07).
"""
function start_server(handler; host = IPv4(0), port::Integer = 8080, limits::Limits = Limits(),
                      threaded::Bool = Threads.nthreads() > 1, inline = req -> req.path == "/ping")
    listener = listen(host, port; backlog = 1024)
    actual = Int(getsockname(listener)[2])
    s = Server(listener, actual, handler, limits, threaded && !isempty(worker_threads()), Set{Conn}(),
               ReentrantLock(), Threads.Atomic{Bool}(false), Channel{Nothing}(1), nothing,
               Threads.Atomic{Int}(0), inline)
    ensure_counters()
    s.accept_task = @async accept_loop(s)
    return s
end

# ---------------------------------------------------------------------------------------
# Worker threads. Julia's event loop (libuv) runs on thread 1 whenever thread 1 is idle, and a
# task started with `Threads.@spawn` may land on thread 1: a long predict there stalled every
# socket, `/ping` included (S-07). So thread 1 only does I/O, and handlers run on tasks pinned
# to threads 2..n (`jl_set_task_tid`, what `Threads.@threads` uses from Julia 1.3 on), each on
# the thread with the fewest handlers in progress.

"The threads handlers run on: every thread but the first (empty with one thread)."
worker_threads() = 2:(isdefined(Threads, :maxthreadid) ? Threads.maxthreadid() : Threads.nthreads())

const IN_PROGRESS = Threads.Atomic{Int}[]      # per thread id: handlers running or queued there

"Make the per-thread counters (at server start, before any handler runs)."
function ensure_counters()
    ids = worker_threads()
    while length(IN_PROGRESS) < (isempty(ids) ? 1 : last(ids))
        push!(IN_PROGRESS, Threads.Atomic{Int}(0))
    end
end

function least_busy_thread()
    best, load = 0, typemax(Int)
    for t in worker_threads()
        n = IN_PROGRESS[t][]
        n < load && ((best, load) = (t, n))
    end
    return best
end

"""
    start_on_worker(f) -> Task

Start `f` on the least busy worker thread (with one thread: on this one) and return its task.
"""
function start_on_worker(f)
    ids = worker_threads()
    isempty(ids) && return @async f()
    length(IN_PROGRESS) < last(ids) && ensure_counters()
    tid = least_busy_thread()
    counter = IN_PROGRESS[tid]
    Threads.atomic_add!(counter, 1)
    t = Task(() -> try f() finally Threads.atomic_sub!(counter, 1) end)
    t.sticky = true
    ccall(:jl_set_task_tid, Cvoid, (Any, Cint), t, tid - 1)
    schedule(t)
    return t
end

"""
    on_worker(f) -> f()'s value

Run `f` on the least busy worker thread and wait for it (this task yields meanwhile); an
exception of `f` is rethrown here. With one thread, `f()` runs here.
"""
function on_worker(f)
    isempty(worker_threads()) && return f()
    t = start_on_worker(f)
    try
        return fetch(t)
    catch e
        e isa TaskFailedException && throw(e.task.exception)   # the handler's own error, as if run here
        rethrow()
    end
end

# Accepts until the listener is closed: after a stop request [`stop!`](@ref) keeps it open
# until the connections already queued in the listen backlog are accepted (S-13).
function accept_loop(s::Server)
    try
        while isopen(s.listener)
            sock = accept(s.listener)
            Sockets.nagle(sock, false)            # TCP_NODELAY on every connection
            conn = Conn(sock)
            lock(() -> push!(s.conns, conn), s.lock)
            Threads.atomic_add!(s.accepted, 1)
            @async handle_connection(s, conn)          # on this (the I/O) thread
        end
    catch e
        if e isa InterruptException
            request_shutdown(s)
        elseif !(s.stopping[] && (e isa Base.IOError || !isopen(s.listener)))
            @error "accept loop failed" exception = (e, catch_backtrace())
            request_shutdown(s)
        end
    end
end

"""
Serve one connection until it closes, a request says so, or the server stops. A request
whose first byte arrived is always answered, also after a stop request (S-13); the answer
then says `Connection: close`.
"""
function handle_connection(s::Server, c::Conn)
    try
        while true
            c.busy = buffered(c) > 0 || bytesavailable(c.io) > 0   # the next request started
            req = nothing
            try
                req = read_request(c, s.limits)
            catch e
                e isa HTTPError || rethrow()
                e.drain > 0 && discard!(c, e.drain)
                write(c.io, response_bytes(text_error(e.status, e.msg), false, false, "HTTP/1.1"))
                break
            end
            req === nothing && break
            resp = call_handler(s, req)
            keep = req.keepalive && !s.stopping[]
            write(c.io, response_bytes(resp, keep, req.method == "HEAD", req.version))
            c.served += 1
            keep || break
        end
    catch e
        if e isa InterruptException
            request_shutdown(s)
        elseif !(e isa Base.IOError || e isa EOFError || (e isa ArgumentError && !isopen(c.io)))
            @error "connection failed" exception = (e, catch_backtrace())
        end
    finally
        c.busy = false
        close(c.io)
        lock(() -> delete!(s.conns, c), s.lock)
    end
    return nothing
end

"Run the handler; an InterruptException (SIGTERM, forwarded as SIGINT) landing in this task
starts the shutdown and the request is answered anyway (S-13: finish in-flight requests)."
function call_handler(s::Server, req::Request, retry::Bool = true)
    try
        s.threaded && !s.inline(req) && return on_worker(() -> s.handler(req)::Response)
        return s.handler(req)::Response
    catch e
        if e isa InterruptException
            request_shutdown(s)
            retry && return call_handler(s, req, false)
        end
        @error "handler failed" path = req.path exception = (e, catch_backtrace())
        return text_error(500, "internal error")
    end
end

"Ask the server to stop (e.g. on SIGTERM); wakes [`wait_for_shutdown`](@ref)."
function request_shutdown(s::Server)
    Threads.atomic_xchg!(s.stopping, true) && return
    try
        put!(s.done, nothing)
    catch
    end
    return nothing
end

"""
    watch_control(s, io = stdin)

Request a shutdown when the line `stop` arrives on `io` (the entrypoint writes it on SIGTERM).
"""
function watch_control(s::Server, io::IO = stdin)
    @async try
        while !eof(io)
            strip(readline(io)) == "stop" && (request_shutdown(s); break)
        end
    catch e
        e isa Base.IOError || e isa EOFError || @error "control channel failed" exception = e
    end
end

"Block until [`request_shutdown`](@ref) is called (an `InterruptException` here also counts)."
function wait_for_shutdown(s::Server)
    try
        take!(s.done)
    catch e
        e isa InterruptException || rethrow()
        request_shutdown(s)
    end
end

"""
    queued_connections(listener) -> Int

Connections the kernel completed but nobody accepted yet (Linux: `tcpi_unacked` of
`TCP_INFO` on a listening socket is its accept-queue length); 0 where unknown.
"""
function queued_connections(listener::Sockets.TCPServer)
    Sys.islinux() || return 0
    info = zeros(UInt8, 232)                  # struct tcp_info; tcpi_unacked at byte 24
    len = Ref{Cuint}(length(info))
    fd = Base._fd(listener)
    rc = ccall(:getsockopt, Cint, (Cint, Cint, Cint, Ptr{UInt8}, Ref{Cuint}),
               reinterpret(Cint, fd), 6 #= IPPROTO_TCP =#, 11 #= TCP_INFO =#, info, len)
    (rc != 0 || len[] < 28) && return 0
    return Int(reinterpret(UInt32, info[25:28])[1])
end

"""
    stop!(s; timeout = 25, first_request_grace = 2)

Drain (S-13): accept what is already queued in the listen backlog, then stop listening
(new connections are refused); answer every request whose bytes arrived (with
`Connection: close`); close idle keep-alive connections; give connections that were
accepted but sent nothing yet `first_request_grace` seconds. Returns true when all
connections closed, false at `timeout` seconds (the process must exit within 30 s).
"""
function stop!(s::Server; timeout::Real = 25, first_request_grace::Real = 2)
    s.stopping[] = true
    t0 = time()
    if isopen(s.listener)
        target = s.accepted[] + queued_connections(s.listener)
        while true                                   # at least one turn: libuv may hold one
            pause(0.005)
            (s.accepted[] >= target || time() - t0 > 1) && break
        end
        try
            close(s.listener)
        catch
        end
    end
    while true
        open_conns = lock(() -> collect(s.conns), s.lock)
        isempty(open_conns) && return true
        waited = time() - t0
        for c in open_conns
            # idle keep-alive: the blocked read ends; accepted but silent: after the grace
            c.busy || (c.served == 0 && waited < first_request_grace) || close(c.io)
        end
        waited > timeout && return false
        pause(0.01)
    end
end

"Sleep; a second SIGTERM (an `InterruptException`) does not stop the drain."
function pause(seconds)
    try
        sleep(seconds)
    catch e
        e isa InterruptException || rethrow()
    end
end
