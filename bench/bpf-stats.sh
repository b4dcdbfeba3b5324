# shellcheck shell=bash
# Helpers of the benches that read the kernel's BPF run-time statistics
# (kernel.bpf_stats_enabled), sourced by bench/hook-cost and bench/miredo-relay.

# prog_ids_of PID PREFIX: the ids of the programs process PID holds whose
# name starts with PREFIX, found by its fds: other tests' copies of the same
# programs, loaded meanwhile, are not counted.
prog_ids_of() {
	bpftool prog show --json | python3 -c '
import json, os, sys
pid, prefix = sys.argv[1], sys.argv[2]
mine = set()
for fd in os.listdir("/proc/%s/fdinfo" % pid):
    try:
        for line in open("/proc/%s/fdinfo/%s" % (pid, fd)):
            if line.startswith("prog_id:"):
                mine.add(int(line.split()[1]))
    except OSError:
        pass
print(" ".join(str(p["id"]) for p in json.load(sys.stdin)
               if p.get("name", "").startswith(prefix) and p["id"] in mine))' "$1" "$2"
}

# prog_stats ID...: "RUN_TIME_NS RUN_CNT", summed over the programs given.
prog_stats() {
	local id t=0 c=0 rt rc
	for id in "$@"; do
		read -r rt rc < <(bpftool prog show id "$id" --json |
			python3 -c 'import json,sys; p=json.load(sys.stdin); print(p.get("run_time_ns",0), p.get("run_cnt",0))')
		t=$((t + rt)) c=$((c + rc))
	done
	echo "$t $c"
}
