//! Load shedding on a manual clock and a controllable inner service:
//! bounds, permit lifetimes, CoDel, priorities, the adaptive limits, the
//! 503 answer, races, and the stack with rate limits.

mod adaptive;
mod answer;
mod bounds;
mod codel;
mod gradient;
mod hook;
mod permits;
mod priority;
mod races;
mod stack;
mod support;
