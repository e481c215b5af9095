# Run by `julia --output-o` (build.sh): what this process holds when it ends is saved as the
# system image. So: load Rosetta, then compile every method the traced serving path compiled.
# `--output-o` starts julia without its usual initialisation (no stdio, empty load path), as
# PackageCompiler's own sysimage script knows: set those up first.
Base.reinit_stdio()
isdefined(Base, :init_depot_path) && Base.init_depot_path()
isdefined(Base, :init_load_path) && Base.init_load_path()
isdefined(Base, :init_active_project) && Base.init_active_project()
using Rosetta

# the statements name types through the modules loaded (Rosetta, Sockets, Base.Threads, ...)
const STAGING = Module(:RosettaSysimageStaging)
for (id, mod) in Base.loaded_modules
    id.name in ("Main", "Core", "Base") && continue
    Core.eval(STAGING, :(const $(Symbol(id.name)) = $mod))
end
ok = failed = 0
for line in eachline(ARGS[1])
    global ok, failed
    startswith(line, "precompile(") || continue
    try
        Base.include_string(STAGING, line)     # anonymous functions of another session may not exist
        ok += 1
    catch
        failed += 1
    end
end
println(stderr, "rosetta sysimage: $ok statements compiled, $failed skipped")
