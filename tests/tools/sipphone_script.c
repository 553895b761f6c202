/*
 * sipphone_script.c - sipphone's script: the argument parsers of the step types and the reading
 * of the script into steps. See sipphone.c for the tool and sipphone.h for what is shared.
 */
#include "sipphone.h"

#include "parse_num.h"

/* ---- script ---------------------------------------------------------------------------------- */

bool parse_seconds(const char *s, double *out, bool zero_ok)
{
	return parse_double(s, out) && (*out > 0 || (zero_ok && *out == 0)) && *out <= 3600;
}

/* One typed argument: s:TEXT, n:NUM, b:true|false, null, or a bare (or quoted) string. */
int parse_value(const char *tok, bool quoted, struct val *v)
{
	memset(v, 0, sizeof(*v));
	v->kind = VAL_STR;
	v->str = tok;
	if (quoted)
		return 0;
	if (strncmp(tok, "s:", 2) == 0) {
		v->str = tok + 2;
	} else if (strncmp(tok, "n:", 2) == 0) {
		v->kind = VAL_NUM;
		if (!parse_double(tok + 2, &v->num))
			return -EINVAL;
	} else if (strncmp(tok, "b:", 2) == 0) {
		v->kind = VAL_BOOL;
		if (strcmp(tok + 2, "true") != 0 && strcmp(tok + 2, "false") != 0)
			return -EINVAL;
		v->flag = tok[2] == 't';
	} else if (strcmp(tok, "null") == 0) {
		v->kind = VAL_NULL;
	}
	return 0;
}

static int parse_values(struct step *st, int argc, char **argv, const bool *quoted)
{
	if (argc > MAX_ARGS)
		return -E2BIG;
	for (int i = 0; i < argc; i++)
		if (parse_value(argv[i], quoted[i], &st->args[i]) < 0) {
			fprintf(stderr, "sipphone: line %d: bad argument '%s'\n", st->lineno,
				argv[i]);
			return -EINVAL;
		}
	st->nargs = argc;
	return 0;
}

int parse_invoke(struct step *st, int argc, char **argv, const bool *quoted)
{
	st->name = argv[0];
	st->want_error = strcmp(st->type->name, "invoke-error") == 0;
	return parse_values(st, argc - 1, argv + 1, quoted + 1);
}

/* invite/accept/...: every argument is a literal string (hold: one boolean). */
int parse_shortcut(struct step *st, int argc, char **argv, const bool *quoted)
{
	st->name = st->type->method;
	if (argc > MAX_ARGS)
		return -E2BIG;
	for (int i = 0; i < argc; i++) {
		st->args[i].kind = VAL_STR;
		st->args[i].str = argv[i];
	}
	st->nargs = argc;
	if (strcmp(st->type->name, "hold") == 0) {
		if (strcmp(argv[0], "true") != 0 && strcmp(argv[0], "false") != 0)
			return -EINVAL;
		st->args[0].kind = VAL_BOOL;
		st->args[0].flag = argv[0][0] == 't';
	}
	return 0;
}

int parse_wait(struct step *st, int argc, char **argv, const bool *quoted)
{
	const char *secs = NULL;

	st->name = argv[0];
	st->seconds = DEFAULT_WAIT_S;
	if (strcmp(st->type->name, "wait-arg") == 0) {
		double idx;

		if (argc < 3 || !parse_double(argv[1], &idx) || idx < 0 || idx >= EVENT_MAX_ARGS ||
		    idx != floor(idx))
			return -EINVAL;
		st->index = (int)idx;
		st->substr = argv[2];
		secs = argc > 3 ? argv[3] : NULL;
	} else {
		secs = argc > 1 ? argv[1] : NULL;
	}
	if (secs && !parse_seconds(secs, &st->seconds, false))
		return -EINVAL;
	return 0;
}

int parse_no_event(struct step *st, int argc, char **argv, const bool *quoted)
{
	st->name = argv[0];
	return parse_seconds(argv[1], &st->seconds, false) ? 0 : -EINVAL;
}

int parse_publish(struct step *st, int argc, char **argv, const bool *quoted)
{
	bool silence = strcmp(st->type->name, "publish-silence") == 0;

	st->name = argv[0];
	st->codec = codec_by_name(argv[1]);
	if (!st->codec)
		return -EINVAL;
	if (silence) {
		st->freq = 0;
		return parse_seconds(argv[2], &st->seconds, false) ? 0 : -EINVAL;
	}
	if (!parse_double(argv[2], &st->freq) || st->freq <= 0 || st->freq >= st->codec->rate / 2.0)
		return -EINVAL;
	if (argc == 6 && strcmp(argv[4], "video") == 0)
		st->video = argv[5];
	else if (argc != 4)
		return -EINVAL;
	return parse_seconds(argv[3], &st->seconds, false) ? 0 : -EINVAL;
}

int parse_play(struct step *st, int argc, char **argv, const bool *quoted)
{
	st->name = argv[0];
	st->path = argv[1];
	return 0;
}

int parse_seconds_arg(struct step *st, int argc, char **argv, const bool *quoted)
{
	return parse_seconds(argv[0], &st->seconds, strcmp(st->type->name, "sleep") == 0) ? 0
											  : -EINVAL;
}

int parse_nothing(struct step *st, int argc, char **argv, const bool *quoted)
{
	return 0;
}

/* ---- script parsing -------------------------------------------------------------------------- */

/*
 * Splits @line in place into at most @max tokens; `"..."` quotes (with \" and \\), `#` outside
 * quotes at a token start ends the line. @quoted[i] says token i started with a quote. Returns
 * the count, or -EINVAL (unterminated quote) / -E2BIG.
 */
static int tokenize(char *line, char **tok, bool *quoted, int max)
{
	char *rd = line, *wr = line;
	int n = 0;

	for (;;) {
		bool inq = false;

		while (*rd == ' ' || *rd == '\t' || *rd == '\r' || *rd == '\n')
			rd++;
		if (!*rd || *rd == '#')
			return n;
		if (n == max)
			return -E2BIG;
		tok[n] = wr;
		quoted[n] = *rd == '"';
		while (*rd && (inq || (*rd != ' ' && *rd != '\t' && *rd != '\r' && *rd != '\n'))) {
			if (*rd == '"') {
				inq = !inq;
				rd++;
			} else if (inq && *rd == '\\' && rd[1]) {
				*wr++ = rd[1];
				rd += 2;
			} else {
				*wr++ = *rd++;
			}
		}
		if (inq)
			return -EINVAL;
		if (*rd)
			rd++;
		*wr++ = '\0';
		n++;
	}
}

static char *trimmed_copy(const char *s)
{
	size_t len;

	while (*s == ' ' || *s == '\t')
		s++;
	len = strcspn(s, "\r\n");
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return strndup(s, len);
}

/* expect-connect ok|rejected [SUBSTRING] */
static int parse_expect_connect(struct phone *ph, int argc, char **argv)
{
	if (argc < 1 || argc > 2)
		return -EINVAL;
	if (strcmp(argv[0], "ok") == 0)
		ph->connect_want_error = false;
	else if (strcmp(argv[0], "rejected") == 0)
		ph->connect_want_error = true;
	else
		return -EINVAL;
	ph->connect_substr = argc > 1 ? argv[1] : NULL;
	return 0;
}

/* Parses one script line into @sc (or the connect expectations of @ph). Returns 0 or -EINVAL
 * after printing why. */
static int parse_line(struct phone *ph, struct script *sc, char *buf, int lineno)
{
	char *tok[MAX_TOKENS], *text = trimmed_copy(buf), *copy;
	bool quoted[MAX_TOKENS];
	const struct step_type *t;
	struct step *st;
	int n;

	if (!text)
		return -ENOMEM;
	n = tokenize(buf, tok, quoted, MAX_TOKENS);
	if (n <= 0) {
		if (n < 0)
			fprintf(stderr, "sipphone: line %d: %s\n", lineno,
				n == -E2BIG ? "too many tokens" : "unterminated quote");
		free(text);
		return n;
	}
	/* The tokens point into @buf: keep a private copy of the whole buffer. */
	copy = malloc(SCRIPT_LINE_MAX);
	if (!copy) {
		free(text);
		return -ENOMEM;
	}
	memcpy(copy, buf, SCRIPT_LINE_MAX);
	for (int i = 0; i < n; i++)
		tok[i] = copy + (tok[i] - buf);
	if (strcmp(tok[0], "expect-connect") == 0) {
		if (sc->nsteps != 1 || sc->steps[0].lineno ||
		    parse_expect_connect(ph, n - 1, tok + 1) < 0) {
			fprintf(stderr,
				"sipphone: line %d: expect-connect ok|rejected [SUBSTRING] "
				"must be the first command\n",
				lineno);
			goto out_bad;
		}
		free(sc->steps[0].text);
		free(sc->steps[0].buf);
		sc->steps[0].text = text;
		sc->steps[0].buf = copy;
		sc->steps[0].lineno = lineno;
		return 0;
	}
	t = step_type_find(tok[0]);
	if (!t) {
		fprintf(stderr, "sipphone: line %d: unknown command '%s'\n", lineno, tok[0]);
		goto out_bad;
	}
	if (n - 1 < t->min_args || n - 1 > t->max_args) {
		fprintf(stderr, "sipphone: line %d: %s takes %d to %d arguments\n", lineno, t->name,
			t->min_args, t->max_args);
		goto out_bad;
	}
	if (sc->nsteps > MAX_STEPS) {
		fprintf(stderr, "sipphone: line %d: more than %d commands\n", lineno, MAX_STEPS);
		goto out_bad;
	}
	st = &sc->steps[sc->nsteps];
	memset(st, 0, sizeof(*st));
	st->type = t;
	st->lineno = lineno;
	st->text = text;
	st->buf = copy;
	if (t->parse(st, n - 1, tok + 1, quoted + 1) < 0) {
		fprintf(stderr, "sipphone: line %d: bad arguments: %s\n", lineno, text);
		goto out_bad;
	}
	sc->nsteps++;
	return 0;
out_bad:
	free(text);
	free(copy);
	return -EINVAL;
}

/* Reads the script from @f. Returns 0 or -EINVAL after printing why. */
int read_script(struct phone *ph, struct script *sc, FILE *f)
{
	static char buf[SCRIPT_LINE_MAX];
	int lineno = 0;

	sc->nsteps = 1;
	memset(&sc->steps[0], 0, sizeof(sc->steps[0]));
	sc->steps[0].type = &connect_type;
	sc->steps[0].text = strdup("connect");
	if (!sc->steps[0].text)
		return -ENOMEM;
	while (fgets(buf, sizeof(buf), f)) {
		lineno++;
		if (!strchr(buf, '\n') && !feof(f)) {
			fprintf(stderr, "sipphone: line %d: longer than %d bytes\n", lineno,
				SCRIPT_LINE_MAX - 1);
			return -EINVAL;
		}
		if (parse_line(ph, sc, buf, lineno) < 0)
			return -EINVAL;
	}
	if (ferror(f)) {
		fprintf(stderr, "sipphone: reading the script: %s\n", strerror(errno));
		return -EIO;
	}
	return 0;
}

void script_free(struct script *sc)
{
	for (int i = 0; i < sc->nsteps; i++) {
		free(sc->steps[i].text);
		free(sc->steps[i].buf);
	}
	sc->nsteps = 0;
}
