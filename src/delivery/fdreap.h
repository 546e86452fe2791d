/*
 * delivery/fdreap — closes the delivery engine's message file
 * descriptors on a helper thread.
 *
 * Why: the last close() of a message file that the scheduler has just
 * removed from the queue frees its inode and blocks there and then: on
 * ext4 mounted with "discard" (and no journal to defer it) that is a
 * synchronous discard request to the disk per message.  On the one
 * scheduler thread that drives every outbound connection, each such
 * wait stalls all of them.  Handing the descriptor to this thread
 * takes the wait off the event loop; nothing reads the descriptor
 * after it is handed over, so the order of the closes does not matter.
 *
 * Bounded: at most FDREAP_MAX descriptors wait (the fd limit must not
 * be eaten by a slow disk); beyond that, and whenever the thread could
 * not be started, fdreap_close() closes at once, as before.  The thread
 * closes in batches, at the latest ~20 ms after a descriptor arrives.
 *
 * Threads: fdreap_close() may be called from one thread at a time per
 * fdreap (the scheduler's); fdreap_free() closes what is left and joins.
 */
#ifndef OUTPOST_DLV_FDREAP_H
#define OUTPOST_DLV_FDREAP_H

#include <stddef.h>

#define FDREAP_MAX	256

/* A fixed ring of descriptors: the pure part, unit-tested. */
struct fdreap_ring {
	int	 fds[FDREAP_MAX];
	size_t	 head;		/* next to take */
	size_t	 n;		/* waiting */
};

void	fdreap_ring_init(struct fdreap_ring *r);
/* Returns 0, or -1 when the ring is full. */
int	fdreap_ring_push(struct fdreap_ring *r, int fd);
/* Moves up to max waiting descriptors, oldest first, into out; returns
 * how many. */
size_t	fdreap_ring_take(struct fdreap_ring *r, int *out, size_t max);

struct fdreap;

/* Starts the thread; NULL when it cannot (then pass NULL below: every
 * close happens inline). */
struct fdreap	*fdreap_new(void);
/* Closes fd, later and elsewhere when it can.  fd < 0 is a no-op; r may
 * be NULL. */
void	fdreap_close(struct fdreap *r, int fd);
/* Closes every waiting descriptor, stops the thread and frees. */
void	fdreap_free(struct fdreap *r);

#endif
