# By-hand reference for the force-field speed in the README (not part of the build or the tests):
# energy + forces calls per second of OpenMM's CPU platform (1 thread) and Reference platform for
# alanine dipeptide and tetrapeptide with OBC1, no cutoff, on 1024 conformations jittered by 0.005 nm:
# setPositions + getState(energy, forces) per conformation, best of 5 passes.
# Run from the repository root: pip install openmm; OPENMM_CPU_THREADS=1 taskset -c 1 python3 benches/openmm_speed.py
# Compare with: RAYON_NUM_THREADS=1 taskset -c 1 cargo bench -p fab-benches --bench aldp_energy -- energies_and_forces
import time, numpy as np, openmm, openmm.app as app, openmm.unit as u, sys
for name, top, crd in [
    ("dipeptide", "crates/fab-targets/data/aldp/alanine-dipeptide.prmtop", "crates/fab-targets/data/aldp/alanine-dipeptide.crd"),
    ("tetrapeptide", "crates/fab-targets/data/tetrapeptide/alanine-tetrapeptide.prmtop", "crates/fab-targets/data/tetrapeptide/alanine-tetrapeptide.inpcrd"),
]:
    prm = app.AmberPrmtopFile(top)
    inp = app.AmberInpcrdFile(crd)
    system = prm.createSystem(implicitSolvent=app.OBC1, nonbondedMethod=app.NoCutoff, constraints=None)
    for platform in ["CPU", "Reference"]:
        props = {"Threads": "1"} if platform == "CPU" else {}
        ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform), props)
        x0 = np.array(inp.getPositions().value_in_unit(u.nanometer))
        rng = np.random.default_rng(0)
        xs = [x0 + rng.uniform(-0.005, 0.005, x0.shape) for _ in range(1024)]
        for x in xs[:50]:
            ctx.setPositions(x); ctx.getState(getEnergy=True, getForces=True)
        best = 1e9
        for rep in range(5):
            t = time.perf_counter()
            for x in xs:
                ctx.setPositions(x)
                s = ctx.getState(getEnergy=True, getForces=True)
            best = min(best, time.perf_counter() - t)
        print(f"{name} {platform} 1 thread: {1024/best:.0f} calls/s ({best*1e3:.1f} ms per 1024)", flush=True)
