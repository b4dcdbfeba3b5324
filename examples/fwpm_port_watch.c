// SPDX-License-Identifier: MIT
/*
 * A firewall's Teredo exception, written as Microsoft's "Required firewall
 * exceptions for Teredo" asks: read the Teredo client's dynamic port with
 * FwpmSystemPortsGet0, follow it with FwpmSystemPortsSubscribe0, and open
 * exactly that port. Here "open" is a line on stdout; a real firewall would
 * update its rule. Builds unchanged against mingw-w64 on Windows (link
 * fwpuclnt) and against teredo-observer on Linux:
 *
 *   cc fwpm_port_watch.c $(pkg-config --cflags --libs teredo-observer)
 */
#ifdef _WIN32
#include <windows.h>
#include <fwpmu.h>
#else
#include <signal.h>
#include <teredo_fwpmu.h>
#include <unistd.h>
#endif
#include <stdio.h>

static UINT16 teredo_port(const FWPM_SYSTEM_PORTS0 *sysPorts)
{
	for (UINT32 i = 0; i < sysPorts->numTypes; i++) {
		const FWPM_SYSTEM_PORTS_BY_TYPE0 *t = &sysPorts->types[i];

		if (t->type == FWPM_SYSTEM_PORT_TEREDO && t->numPorts > 0)
			return t->ports[0];
	}
	return 0;
}

static void show(const char *when, const FWPM_SYSTEM_PORTS0 *sysPorts)
{
	UINT16 port = teredo_port(sysPorts);

	if (port)
		printf("%s: allow UDP port %u in and out (the Teredo client's)\n", when, port);
	else
		printf("%s: no Teredo client: close its exception\n", when);
	fflush(stdout);
}

static void CALLBACK on_change(void *context, const FWPM_SYSTEM_PORTS0 *sysPorts)
{
	(void)context;
	show("changed", sysPorts); /* the whole snapshot, not a delta */
}

int main(void)
{
	FWPM_SYSTEM_PORTS0 *sysPorts = NULL;
	HANDLE engine = NULL, subscription = NULL;
	DWORD rc;

	rc = FwpmEngineOpen0(NULL, RPC_C_AUTHN_DEFAULT, NULL, NULL, &engine);
	if (rc != ERROR_SUCCESS) {
		fprintf(stderr, "FwpmEngineOpen0: %#lx\n", (unsigned long)rc);
		return 1;
	}
	/* Subscribe first, then read: no change can fall between the two. */
	rc = FwpmSystemPortsSubscribe0(engine, NULL, on_change, NULL, &subscription);
	if (rc == ERROR_SUCCESS)
		rc = FwpmSystemPortsGet0(engine, &sysPorts);
	if (rc != ERROR_SUCCESS) {
		fprintf(stderr,
			"FwpmSystemPorts: %#lx (as an ordinary user, is "
			"teredo-observer.socket enabled?)\n",
			(unsigned long)rc);
		FwpmEngineClose0(engine);
		return 1;
	}
	show("now", sysPorts);
	FwpmFreeMemory0((void **)&sysPorts);
#ifdef _WIN32
	Sleep(INFINITE);
#else
	pause(); /* until a signal ends the program */
#endif
	FwpmSystemPortsUnsubscribe0(engine, subscription);
	FwpmEngineClose0(engine);
	return 0;
}
