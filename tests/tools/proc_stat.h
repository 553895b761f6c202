/*
 * proc_stat.h - the CPU time of a process from /proc, for the benchmark tools (header only: the
 * tools are single files).
 *
 *   long long t0 = proc_cpu_ticks(pid);   ... proc_cpu_ticks(pid) - t0 ticks of CPU since
 *
 * Ticks are sysconf(_SC_CLK_TCK) per second (100 on Linux: a 10 ms resolution, so measure
 * seconds, not milliseconds).
 */
#ifndef RS_PROC_STAT_H
#define RS_PROC_STAT_H

#include <stdio.h>
#include <string.h>

/* CPU ticks (user + system) of @pid, or of this process when @pid is 0. Returns -1 when the
 * stat file cannot be read (process gone). */
static inline long long proc_cpu_ticks(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	size_t n;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/stat");
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields resume after the last ')'. */
	p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

#endif
