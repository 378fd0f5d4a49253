/*
 * unit_systemd.c - docs/modstored.service ($SYSTEMD_UNIT): its syntax is
 * checked here (sections in order, Key=Value lines, known keys, an
 * absolute ExecStart naming modstored, the hardening keys), and, when
 * systemd-analyze is installed, `systemd-analyze verify` runs on a copy
 * whose ExecStart is the daemon just built ($MODSTORED).
 */
#include "t.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The keys this unit may use, by section. */
static const char *const unit_keys[] = {"Description", "Documentation", "After",
					"Wants",       "Requires",	NULL};
static const char *const install_keys[] = {"WantedBy", "Alias", NULL};
static const char *const service_keys[] = {"Type",
					   "ExecStart",
					   "Environment",
					   "EnvironmentFile",
					   "LoadCredential",
					   "KillSignal",
					   "TimeoutStopSec",
					   "Restart",
					   "RestartSec",
					   "LimitNOFILE",
					   "DynamicUser",
					   "User",
					   "Group",
					   "StateDirectory",
					   "StateDirectoryMode",
					   "UMask",
					   "NoNewPrivileges",
					   "CapabilityBoundingSet",
					   "AmbientCapabilities",
					   "ProtectSystem",
					   "ProtectHome",
					   "PrivateTmp",
					   "PrivateDevices",
					   "DevicePolicy",
					   "ProtectKernelTunables",
					   "ProtectKernelModules",
					   "ProtectKernelLogs",
					   "ProtectControlGroups",
					   "ProtectClock",
					   "ProtectHostname",
					   "ProtectProc",
					   "ProcSubset",
					   "RestrictAddressFamilies",
					   "RestrictNamespaces",
					   "RestrictRealtime",
					   "RestrictSUIDSGID",
					   "LockPersonality",
					   "MemoryDenyWriteExecute",
					   "RemoveIPC",
					   "SystemCallArchitectures",
					   "SystemCallFilter",
					   "SystemCallErrorNumber",
					   NULL};

/* Hardening settings the example must make, exactly. */
static const char *const required[] = {
    "Service.NoNewPrivileges=yes",
    "Service.ProtectSystem=strict",
    "Service.ProtectHome=yes",
    "Service.PrivateTmp=yes",
    "Service.PrivateDevices=yes",
    "Service.CapabilityBoundingSet=",
    "Service.DynamicUser=yes",
    "Service.StateDirectory=modstore",
    "Service.KillSignal=SIGTERM",
    "Service.RestrictNamespaces=yes",
    "Service.LockPersonality=yes",
    "Service.MemoryDenyWriteExecute=yes",
    "Service.ProtectKernelTunables=yes",
    "Service.SystemCallFilter=@system-service",
    "Install.WantedBy=multi-user.target",
    NULL};

#define MAX_LINES 256

static char seen[MAX_LINES][256];
static size_t nseen;

static int in_list(const char *const *list, const char *key)
{
	for (; *list; list++)
		if (strcmp(*list, key) == 0)
			return 1;
	return 0;
}

static int has(const char *what)
{
	size_t i;

	for (i = 0; i < nseen; i++)
		if (strcmp(seen[i], what) == 0)
			return 1;
	return 0;
}

/* systemd-analyze verify on a copy with ExecStart = daemon; exit status */
static int analyze(const char *unit, const char *daemon)
{
	char dir[] = "/tmp/modstore-unit.XXXXXX", path[PATH_MAX + 64];
	char cmd[2 * PATH_MAX + 128], line[1024];
	FILE *in = NULL, *out = NULL;
	int st = -1;

	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/modstored.service", dir);
	in = fopen(unit, "r");
	out = fopen(path, "w");
	if (!in || !out)
		goto out;
	while (fgets(line, sizeof(line), in)) {
		if (strncmp(line, "ExecStart=", 10) == 0) {
			char *sp = strchr(line + 10, ' ');

			fprintf(out, "ExecStart=%s%s", daemon, sp ? sp : "\n");
		} else {
			fputs(line, out);
		}
	}
	if (fclose(out) != 0) {
		out = NULL;
		goto out;
	}
	out = NULL;
	snprintf(cmd, sizeof(cmd), "systemd-analyze verify '%s' 2>&1", path);
	st = system(cmd);
	st = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
out:
	if (in)
		fclose(in);
	if (out)
		fclose(out);
	unlink(path);
	rmdir(dir);
	return st;
}

int main(void)
{
	const char *unit = getenv("SYSTEMD_UNIT");
	const char *daemon = getenv("MODSTORED");
	char line[1024], section[32] = "", real[PATH_MAX];
	int order = 0, lineno = 0;
	size_t i;
	FILE *f;

	if (!unit || !*unit)
		unit = "docs/modstored.service";
	if (!daemon || !*daemon)
		daemon = "bin/modstored";
	f = fopen(unit, "r");
	if (!f) {
		perror(unit);
		CHECK(!"the unit opens");
		return t_done();
	}
	while (fgets(line, sizeof(line), f)) {
		char *eq, *v;
		size_t n;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (!*line || line[0] == '#' || line[0] == ';')
			continue;
		n = strlen(line);
		if (line[0] == '[') {
			static const char *const want[] = {
			    "[Unit]", "[Service]", "[Install]"};

			CHECK(order < 3 && strcmp(line, want[order]) == 0);
			if (order < 3)
				order++;
			snprintf(section, sizeof(section), "%.*s", (int)(n - 2),
				 line + 1);
			continue;
		}
		eq = strchr(line, '=');
		if (!eq || eq == line || !*section) {
			fprintf(stderr, "%s:%d: not Key=Value: %s\n", unit,
				lineno, line);
			CHECK(!"a Key=Value line in a section");
			continue;
		}
		*eq = '\0';
		v = eq + 1;
		for (i = 0; line[i]; i++)
			CHECK(isalnum((unsigned char)line[i]));
		if (!in_list(strcmp(section, "Unit") == 0      ? unit_keys
			     : strcmp(section, "Service") == 0 ? service_keys
							       : install_keys,
			     line)) {
			fprintf(stderr, "%s:%d: unknown key %s in [%s]\n", unit,
				lineno, line, section);
			CHECK(!"a known key");
		}
		if (strcmp(line, "ExecStart") == 0) {
			/* an absolute path to modstored, with --dir */
			CHECK(v[0] == '/');
			CHECK(strncmp(v + strcspn(v, " ") - 10, "/modstored",
				      10) == 0);
			CHECK(strstr(v, " --dir ") != NULL);
		}
		if (nseen < MAX_LINES) {
			int w = snprintf(seen[nseen], sizeof(seen[0]),
					 "%s.%s=%s", section, line, v);

			CHECK(w > 0 && (size_t)w < sizeof(seen[0]));
			nseen++;
		}
	}
	fclose(f);
	CHECK(order == 3);
	CHECK(has("Unit.Description=modstore: versioned memory images of VM "
		  "modules over HTTP"));
	for (i = 0; required[i]; i++) {
		if (!has(required[i]))
			fprintf(stderr, "%s: missing %s\n", unit, required[i]);
		CHECK(has(required[i]));
	}

	if (system("command -v systemd-analyze >/dev/null 2>&1") == 0 &&
	    realpath(daemon, real)) {
		int st = analyze(unit, real);

		CHECK(st == 0);
		printf("systemd-analyze verify: exit %d\n", st);
	} else {
		printf("systemd-analyze is not installed: the unit's syntax "
		       "was checked here only\n");
	}
	return t_done();
}
