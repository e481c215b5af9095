#!/bin/sh
# Build Rosetta's system image at image build time (issue 20: cold start), with julia's own
# tooling (PackageCompiler is not installable offline):
#   1. trace: run the serving path once (`Rosetta.precompile_workload`) with --trace-compile,
#      which writes one `precompile(...)` statement per method compiled;
#   2. julia --output-o: julia's own image + `using Rosetta` + those statements → an object file;
#   3. link it into a shared library with the image's C compiler (cc -shared), next to libjulia;
#   4. check that julia starts on it and `using Rosetta` serves.
# Any failure leaves no image and exits 0: `serve`/`train` then run on julia's own image (the
# fallback) and say so in their start-up log.
# Usage: build.sh OUTPUT.so
set -u
out="${1:-/opt/rosetta/rosetta-sys.so}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fallback() { echo "rosetta sysimage: NOT built ($1); serve and train use julia's own system image" >&2; rm -f "$out"; exit 0; }

cc="$(command -v cc || command -v gcc || true)"
[ -n "$cc" ] || fallback "no C compiler"
julia="julia --startup-file=no --history-file=no"
base="$($julia -e 'print(unsafe_string(Base.JLOptions().image_file))')" || fallback "julia does not start"

$julia --trace-compile="$work/trace.jl" -e 'using Rosetta, Logging
    with_logger(NullLogger()) do
        Rosetta.precompile_workload()
    end
    with_logger(ConsoleLogger(devnull, Logging.Info)) do   # the start-up log lines
        @info "x" a = 1 b = [1]
        @warn "x" exception = ErrorException("x")
    end' || fallback "the trace run failed"
echo "rosetta sysimage: $(wc -l < "$work/trace.jl") precompile statements traced" >&2

$julia --output-o="$work/rosetta.o" -J "$base" "$here/sysimage.jl" "$work/trace.jl" \
  || fallback "julia --output-o failed"

# the libjulia(-internal, 1.6+) this julia has loaded: Debian ships no libjulia.so dev symlink,
# so the files are taken by their real names from the running process
libs="$($julia -e 'using Libdl
    print(join(filter(p -> occursin(r"/libjulia(-internal)?\.so", p), Libdl.dllist()), " "))')"
[ -n "$libs" ] || fallback "libjulia not found"
"$cc" -shared -o "$out" -Wl,--whole-archive "$work/rosetta.o" -Wl,--no-whole-archive $libs \
  -Wl,-rpath,"$(dirname "$(echo $libs | cut -d' ' -f1)")" || fallback "linking failed"

$julia -J "$out" -e 'using Rosetta; Rosetta.precompile_workload(); print("ok")' >"$work/check.log" 2>&1 \
  || { tail -n 20 "$work/check.log" >&2; fallback "julia does not start on it"; }
echo "rosetta sysimage: built $out ($(du -h "$out" | cut -f1))" >&2
