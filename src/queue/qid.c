/*
 * qid — queue ids.
 *
 * A queue id is 16 characters of Crockford base32 (0-9, A-Z without
 * I L O U): 11 characters (55 bits) of microseconds since the Unix epoch,
 * then 5 characters (25 bits) of the process id.  Ids therefore sort by
 * creation time, and two processes never produce the same id (pids are at
 * most 22 bits on Linux).  Within a process the timestamp part is forced
 * strictly increasing under a mutex (a burst of ids in one microsecond
 * borrows the next microseconds), so ids are unique across threads and,
 * because recovery raises the floor to the newest queued id, across
 * restarts even when the clock steps back.
 *
 * Owns: the per-process "last timestamp" and the cached pid.
 * Fails: never; a clock that cannot be read counts as time 0, and the
 * monotonic floor still keeps ids unique.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue/spool.h"

#define QID_TIME_CHARS	11
#define QID_PID_CHARS	(SPOOL_QID_LEN - QID_TIME_CHARS)
#define QID_TIME_MASK	((UINT64_C(1) << (5 * QID_TIME_CHARS)) - 1)

static const char qid_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_mutex_t qid_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t qid_last;	/* last timestamp part handed out */
static pid_t qid_pid;		/* cached: getpid() is a syscall */
static pthread_once_t qid_once = PTHREAD_ONCE_INIT;

void	spool_qid_floor(const char *qid);

static void
qid_atfork_child(void)
{
	/* The child has a new pid; ids must not collide with the parent's. */
	qid_pid = getpid();
	pthread_mutex_init(&qid_lock, NULL);
}

static void
qid_init(void)
{
	qid_pid = getpid();
	pthread_atfork(NULL, NULL, qid_atfork_child);
}

static int
qid_digit(int c)
{
	const char *p;

	if (c == '\0')
		return -1;
	if ((p = strchr(qid_alphabet, c)) == NULL)
		return -1;
	return (int)(p - qid_alphabet);
}

int
spool_qid_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < SPOOL_QID_LEN; i++)
		if (qid_digit((unsigned char)s[i]) < 0)
			return 0;
	return s[SPOOL_QID_LEN] == '\0';
}

/*
 * Raises the timestamp floor to the one in qid (called by recovery for
 * every queued message), so that a clock stepped back before a restart
 * cannot produce an id that already names a queued file.
 */
void
spool_qid_floor(const char *qid)
{
	uint64_t t = 0;
	size_t i;
	int d;

	for (i = 0; i < QID_TIME_CHARS; i++) {
		if ((d = qid_digit((unsigned char)qid[i])) < 0)
			return;
		t = (t << 5) | (uint64_t)d;
	}
	pthread_mutex_lock(&qid_lock);
	if (t > qid_last)
		qid_last = t;
	pthread_mutex_unlock(&qid_lock);
}

void
spool_qid_new(char out[SPOOL_QID_SIZE])
{
	struct timespec ts;
	uint64_t now = 0, pid;
	int i;

	pthread_once(&qid_once, qid_init);
	if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && ts.tv_sec >= 0)
		now = (uint64_t)ts.tv_sec * 1000000u +
		    (uint64_t)ts.tv_nsec / 1000u;
	pthread_mutex_lock(&qid_lock);
	if (now <= qid_last)
		now = qid_last + 1;
	qid_last = now;
	pid = (uint64_t)qid_pid;
	pthread_mutex_unlock(&qid_lock);

	now &= QID_TIME_MASK;
	for (i = QID_TIME_CHARS - 1; i >= 0; i--) {
		out[i] = qid_alphabet[now & 31];
		now >>= 5;
	}
	for (i = QID_PID_CHARS - 1; i >= 0; i--) {
		out[QID_TIME_CHARS + i] = qid_alphabet[pid & 31];
		pid >>= 5;
	}
	out[SPOOL_QID_LEN] = '\0';
}
