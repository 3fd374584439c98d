//! The shared steps of a buyer: the unit the scheduler grants, a schedule
//! names, and exploration reorders.
//!
//! A buyer passes its gate before each of these and nowhere else, so
//! between two steps it touches nothing another process can see.

use std::fmt;

/// One shared step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Step {
    /// `search()`: reads the count to show it.
    Search = 1,
    /// The read before buying.
    Read = 2,
    /// The lock attempt. Granted only while the mutex is free.
    Lock = 3,
    /// The write of the count (for the file store: the bytes, after the
    /// truncate).
    Write = 4,
    /// The file store's truncate, a step of its own so a torn read can be
    /// made on purpose.
    Truncate = 5,
    /// The compare-and-swap.
    Cas = 6,
    /// The unlock.
    Unlock = 7,
    /// The server and queue stores: the request written to the seller's
    /// pipe (the queue's under the lock).
    Request = 8,
    /// The server and queue stores: the seller's answer read back.
    Reply = 9,
}

const ALL: [Step; 9] = [
    Step::Search,
    Step::Read,
    Step::Lock,
    Step::Write,
    Step::Truncate,
    Step::Cas,
    Step::Unlock,
    Step::Request,
    Step::Reply,
];

/// What a step touches, for deciding which steps commute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Touch {
    /// Reads the count (in memory or in the file).
    ReadsCount,
    /// Changes the count.
    WritesCount,
    /// Takes or releases the mutex.
    Mutex,
    /// Talks to the seller, who serves requests in arrival order.
    Seller,
    /// Only the buyer's own pipe: nobody else can see it.
    Own,
}

impl Step {
    /// The step a stored number means.
    pub fn from_u32(n: u32) -> Option<Step> {
        ALL.get((n as usize).wrapping_sub(1)).copied()
    }

    /// The letter of the annotated schedule form (`1S,1R,2W`).
    pub fn letter(self) -> char {
        match self {
            Step::Search => 'S',
            Step::Read => 'R',
            Step::Lock => 'L',
            Step::Write => 'W',
            Step::Truncate => 'T',
            Step::Cas => 'C',
            Step::Unlock => 'U',
            Step::Request => 'Q',
            Step::Reply => 'A',
        }
    }

    /// The step a letter names.
    pub fn from_letter(c: char) -> Option<Step> {
        ALL.into_iter()
            .find(|s| s.letter() == c.to_ascii_uppercase())
    }

    /// The step a word names (`write`), as [`Step::name`] spells it.
    pub fn from_name(name: &str) -> Option<Step> {
        ALL.into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// A word for messages: "buyer 2's next step is read".
    pub fn name(self) -> &'static str {
        match self {
            Step::Search => "search",
            Step::Read => "read",
            Step::Lock => "lock",
            Step::Write => "write",
            Step::Truncate => "truncate",
            Step::Cas => "compare-and-swap",
            Step::Unlock => "unlock",
            Step::Request => "request",
            Step::Reply => "reply",
        }
    }

    /// The step's word in a database sale: its C is one conditional
    /// `UPDATE`, not a compare-and-swap.
    pub fn database_name(self) -> &'static str {
        match self {
            Step::Cas => "update",
            step => step.name(),
        }
    }

    fn touch(self) -> Touch {
        match self {
            Step::Search | Step::Read => Touch::ReadsCount,
            Step::Write | Step::Truncate | Step::Cas => Touch::WritesCount,
            Step::Lock | Step::Unlock => Touch::Mutex,
            Step::Request => Touch::Seller,
            Step::Reply => Touch::Own,
        }
    }

    /// Whether two steps of *different* buyers give the same result in
    /// either order: two reads of the count do, and so do steps on
    /// different objects. (Two steps of one buyer never commute.)
    pub fn commutes_with(self, other: Step) -> bool {
        use Touch::*;
        match (self.touch(), other.touch()) {
            (Own, _) | (_, Own) => true,
            (ReadsCount, ReadsCount) => true,
            (ReadsCount | WritesCount, ReadsCount | WritesCount) => false,
            (Mutex, Mutex) => false,
            (Seller, Seller) => false,
            _ => true,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_through_numbers_and_letters() {
        for step in ALL {
            assert_eq!(Step::from_u32(step as u32), Some(step));
            assert_eq!(Step::from_letter(step.letter()), Some(step));
        }
        assert_eq!(Step::from_u32(0), None);
        assert_eq!(Step::from_u32(10), None);
        assert_eq!(Step::from_letter('x'), None);
    }

    #[test]
    fn reads_commute_and_writes_do_not() {
        assert!(Step::Read.commutes_with(Step::Search));
        assert!(!Step::Read.commutes_with(Step::Write));
        assert!(!Step::Cas.commutes_with(Step::Cas));
        assert!(!Step::Lock.commutes_with(Step::Unlock));
        assert!(Step::Lock.commutes_with(Step::Write));
        assert!(Step::Reply.commutes_with(Step::Request));
        assert!(!Step::Request.commutes_with(Step::Request));
    }
}
