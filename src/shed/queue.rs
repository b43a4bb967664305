//! The waiting queue: one lane per priority, each in arrival order.
//!
//! Waiters live in a slab; a waiter keeps its slot from the moment it is
//! queued until it has seen its resolution (granted or shed) or gone away,
//! so an id is never reused under a waiter that still holds it. Lanes hold
//! ids; the oldest waiter of a lane is at its front.

use std::collections::VecDeque;
use std::task::Waker;

use smallvec::SmallVec;

use super::priority::Priority;
use super::reason::ShedReason;
use crate::clock::Nanos;

/// A waiter's slot in the queue.
pub(crate) type WaiterId = usize;

/// Wakers to wake once the lock is released.
pub(crate) type Wakers = SmallVec<[Waker; 2]>;

/// What a waiter that went away left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Left {
    /// It was still waiting.
    Waiting,
    /// It had been resolved but had not seen it yet.
    Resolved(Resolution),
    /// Nothing: the slot was already free.
    Nothing,
}

/// What became of a waiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    /// It holds a permit now.
    Granted,
    /// It was shed.
    Shed(ShedReason),
}

#[derive(Debug)]
enum Slot {
    Free,
    Waiting {
        priority: Priority,
        enqueued: Nanos,
        waker: Option<Waker>,
    },
    Resolved(Resolution),
}

/// A waiter as seen from its lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiter {
    pub(crate) id: WaiterId,
    pub(crate) priority: Priority,
    pub(crate) enqueued: Nanos,
}

/// The queue; see the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct Queue {
    slots: Vec<Slot>,
    free: Vec<WaiterId>,
    lanes: [VecDeque<WaiterId>; Priority::COUNT],
    len: usize,
}

impl Queue {
    /// How many requests wait.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no request waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a request of `priority` that arrived at `now`.
    pub(crate) fn push(&mut self, priority: Priority, now: Nanos) -> WaiterId {
        let slot = Slot::Waiting {
            priority,
            enqueued: now,
            waker: None,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.lanes[priority.index()].push_back(id);
        self.len += 1;
        id
    }

    fn waiter(&self, id: WaiterId) -> Option<Waiter> {
        match self.slots.get(id) {
            Some(Slot::Waiting {
                priority, enqueued, ..
            }) => Some(Waiter {
                id,
                priority: *priority,
                enqueued: *enqueued,
            }),
            _ => None,
        }
    }

    /// The oldest waiter of `priority`.
    pub(crate) fn oldest_of(&self, priority: Priority) -> Option<Waiter> {
        self.lanes[priority.index()]
            .front()
            .and_then(|&id| self.waiter(id))
    }

    /// The newest waiter of `priority`.
    pub(crate) fn newest_of(&self, priority: Priority) -> Option<Waiter> {
        self.lanes[priority.index()]
            .back()
            .and_then(|&id| self.waiter(id))
    }

    /// The oldest waiter of any priority.
    pub(crate) fn oldest(&self) -> Option<Waiter> {
        Priority::ALL
            .iter()
            .filter_map(|&p| self.oldest_of(p))
            .min_by_key(|w| w.enqueued)
    }

    /// The highest priority with a waiter.
    pub(crate) fn highest(&self) -> Option<Priority> {
        Priority::ALL
            .iter()
            .rev()
            .copied()
            .find(|p| !self.lanes[p.index()].is_empty())
    }

    /// The oldest waiter of the lowest priority that has one, if that
    /// priority is at most `at_most`.
    pub(crate) fn lowest_oldest(&self, at_most: Priority) -> Option<Waiter> {
        Priority::ALL
            .iter()
            .take_while(|&&p| p <= at_most)
            .find_map(|&p| self.oldest_of(p))
    }

    /// Takes a waiting request out of its lane and records what became of
    /// it; its waker goes to `wakers`. Answers false if `id` was not waiting.
    pub(crate) fn resolve(
        &mut self,
        id: WaiterId,
        resolution: Resolution,
        wakers: &mut Wakers,
    ) -> bool {
        let Some(slot) = self.slots.get_mut(id) else {
            return false;
        };
        let Slot::Waiting {
            priority, waker, ..
        } = slot
        else {
            return false;
        };
        let priority = *priority;
        if let Some(waker) = waker.take() {
            wakers.push(waker);
        }
        *slot = Slot::Resolved(resolution);
        self.unlink(id, priority);
        true
    }

    /// The waiter's own poll: its resolution (its slot is then freed), or
    /// `None` with `waker` kept to be woken.
    pub(crate) fn poll(&mut self, id: WaiterId, waker: &Waker) -> Option<Resolution> {
        match self.slots.get_mut(id)? {
            Slot::Waiting { waker: slot, .. } => {
                match slot {
                    Some(old) if old.will_wake(waker) => {}
                    _ => *slot = Some(waker.clone()),
                }
                None
            }
            Slot::Resolved(resolution) => {
                let resolution = *resolution;
                self.release_slot(id);
                Some(resolution)
            }
            // A freed slot under a live waiter would be a bug; the waiter
            // then counts as shed rather than waiting forever.
            Slot::Free => Some(Resolution::Shed(ShedReason::QueueTimeout)),
        }
    }

    /// The waiter went away: frees its slot and answers what it left.
    pub(crate) fn cancel(&mut self, id: WaiterId) -> Left {
        let left = match self.slots.get(id) {
            Some(Slot::Waiting { priority, .. }) => {
                let priority = *priority;
                self.unlink(id, priority);
                Left::Waiting
            }
            Some(Slot::Resolved(resolution)) => Left::Resolved(*resolution),
            Some(Slot::Free) | None => return Left::Nothing,
        };
        self.release_slot(id);
        left
    }

    fn release_slot(&mut self, id: WaiterId) {
        self.slots[id] = Slot::Free;
        self.free.push(id);
        if self.free.len() == self.slots.len() {
            // Nobody holds a slot: start over so the slab does not keep
            // the size of its busiest moment forever.
            self.free.clear();
            self.slots.clear();
        }
    }

    fn unlink(&mut self, id: WaiterId, priority: Priority) {
        let lane = &mut self.lanes[priority.index()];
        if lane.front() == Some(&id) {
            lane.pop_front();
        } else if lane.back() == Some(&id) {
            lane.pop_back();
        } else if let Some(at) = lane.iter().position(|&x| x == id) {
            lane.remove(at);
        }
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    #[test]
    fn lanes_keep_arrival_order_and_priorities() {
        let mut q = Queue::default();
        let a = q.push(Priority::Low, 1);
        let b = q.push(Priority::High, 2);
        let c = q.push(Priority::Low, 3);
        assert_eq!(q.len(), 3);
        assert_eq!(q.highest(), Some(Priority::High));
        assert_eq!(q.oldest().map(|w| w.id), Some(a));
        assert_eq!(q.oldest_of(Priority::Low).map(|w| w.id), Some(a));
        assert_eq!(q.newest_of(Priority::Low).map(|w| w.id), Some(c));
        assert_eq!(q.lowest_oldest(Priority::Normal).map(|w| w.id), Some(a));
        assert_eq!(q.lowest_oldest(Priority::Low).map(|w| w.id), Some(a));

        let mut wakers = Wakers::new();
        assert!(q.resolve(a, Resolution::Granted, &mut wakers));
        assert!(!q.resolve(a, Resolution::Granted, &mut wakers));
        assert_eq!(q.len(), 2);
        assert_eq!(q.poll(a, Waker::noop()), Some(Resolution::Granted));
        assert_eq!(q.poll(b, Waker::noop()), None);
        assert_eq!(q.cancel(b), Left::Waiting);
        assert_eq!(q.len(), 1);
        assert_eq!(q.highest(), Some(Priority::Low));
        assert_eq!(q.cancel(c), Left::Waiting);
        assert_eq!(q.cancel(c), Left::Nothing);
        assert!(q.is_empty());
        assert!(q.slots.is_empty(), "slab reset once every slot is free");
    }

    #[test]
    fn a_middle_waiter_leaves_its_lane() {
        let mut q = Queue::default();
        let ids: Vec<_> = (0..5).map(|t| q.push(Priority::Normal, t)).collect();
        assert_eq!(q.cancel(ids[2]), Left::Waiting);
        let order: Vec<_> = q.lanes[Priority::Normal.index()].iter().copied().collect();
        assert_eq!(order, vec![ids[0], ids[1], ids[3], ids[4]]);
        let reused = q.push(Priority::Normal, 9);
        assert_eq!(reused, ids[2], "a freed slot is reused");
        assert_eq!(q.newest_of(Priority::Normal).map(|w| w.id), Some(reused));
    }
}
