# shellcheck shell=bash
# stage_for_others DIR VAR...: what another user (nobody, through setpriv)
# must run cannot stay in the clone, which may be anywhere (/root is 0700).
# Copies the file each VAR names into DIR (made, mode 0755; it must be under
# directories everyone may search, as /tmp is) and points VAR at the copy.
stage_for_others() {
	local dir=$1 var
	shift
	mkdir -p "$dir" && chmod 0755 "$dir" || return 1
	for var in "$@"; do
		cp -p "${!var}" "$dir/" && chmod a+rX "$dir/$(basename "${!var}")" || return 1
		printf -v "$var" %s "$dir/$(basename "${!var}")"
	done
}

# netns_cause: why `ip netns exec` and `ip -n` cannot work on this system,
# as ": REASON" (nothing when no cause is known), for the message of a
# failed namespace step. Both make / a slave mount in a mount namespace of
# their own ("mount --make-rslave /"), which fails where / is no mount
# point, as under a plain chroot.
netns_cause() {
	# No mount at / in this process's view: mountinfo's fifth field is the mount point.
	if [ -r /proc/self/mountinfo ] && ! awk '$5 == "/" { found = 1 } END { exit !found }' /proc/self/mountinfo; then
		printf ': / is not a mount point here (a chroot?), so ip netns exec and ip -n fail at "mount --make-rslave /"; bind-mount the root on itself before entering it (mount --bind DIR DIR), or use a container (systemd-nspawn, unshare -m)'
	fi
}
