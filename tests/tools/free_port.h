/*
 * free_port.h - a port that nothing holds, for the tools and tests that start a server on one
 * (sipua_probe, the unit tests' SIP UAs and redis-server). Header only.
 *
 *   unsigned port = free_port_on("127.0.0.1");   0: none found
 *
 * The port was free a moment ago; whoever binds it next races any other process on the machine.
 */
#ifndef RS_FREE_PORT_H
#define RS_FREE_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A port on the IPv4 address @ip free for both UDP and TCP right now (0 if none was found). */
static inline unsigned free_port_on(const char *ip)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t len = sizeof(sa);
		int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
		unsigned port = 0;

		inet_pton(AF_INET, ip, &sa.sin_addr); /* not IPv4 text: any address */
		if (u >= 0 && t >= 0 && bind(u, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		    getsockname(u, (struct sockaddr *)&sa, &len) == 0 &&
		    bind(t, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			port = ntohs(sa.sin_port);
		if (u >= 0)
			close(u);
		if (t >= 0)
			close(t);
		if (port)
			return port;
	}
	return 0;
}

#endif
