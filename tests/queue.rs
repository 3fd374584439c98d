//! `--store queue`: the server's seller behind one request pipe that every
//! buyer writes under the segment's mutex.

use crate::common::*;

/// The queue's settings, for `args` more.
fn queue_sale(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--store", "queue", "--lock", "none", "--view", "quiet"];
    all.extend(args);
    sale_json(&all)
}

#[test]
fn queue_sells_exactly_and_takes_the_lock_for_every_request() {
    let v = queue_sale(&["--workers", "20", "--tickets", "50", "--wants", "all"]);
    assert_eq!(v["store"], "queue", "{v}");
    assert_eq!(v["sold"], 50, "{v}");
    assert_eq!(v["remaining"], 0, "{v}");
    assert_eq!(v["oversold"], 0, "{v}");
    assert_eq!(v["lost_updates"], 0, "{v}");
    assert_eq!(v["verdict"], "exact", "{v}");
    let bought: u64 = v["per_worker"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["bought"].as_u64().unwrap())
        .sum();
    assert_eq!(bought, 50, "{v}");
    // Every request goes through the lock: each Q sits between an L and a
    // U of the same buyer, and no request is sent without one.
    let schedule = v["schedule"].as_str().expect("a small sale records");
    let steps: Vec<&str> = schedule.split(',').collect();
    let requests = steps.iter().filter(|s| s.ends_with('Q')).count();
    let locks = steps.iter().filter(|s| s.ends_with('L')).count();
    assert!(requests > 0, "{schedule}");
    assert_eq!(locks, requests, "{schedule}");
    let mut holder: Option<&str> = None;
    for step in &steps {
        let (buyer, letter) = step.split_at(step.len() - 1);
        match letter {
            "L" => {
                assert_eq!(holder, None, "a lock while held: {schedule}");
                holder = Some(buyer);
            }
            "Q" => assert_eq!(holder, Some(buyer), "unlocked request: {schedule}"),
            "U" => {
                assert_eq!(holder, Some(buyer), "{schedule}");
                holder = None;
            }
            _ => {}
        }
    }
}

#[test]
fn queue_refuses_every_lock_setting_but_none() {
    for lock in ["write", "buy", "task", "join", "atomic"] {
        let out = ticketlab()
            .args(["sell", "--store", "queue", "--lock", lock])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{lock}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{lock}: {err}");
        assert!(err.contains("--store queue"), "{lock}: {err}");
        assert!(err.contains("--lock none"), "{lock}: {err}");
        assert!(out.stdout.is_empty(), "{lock}");
    }
}

#[test]
fn queue_replays_a_recorded_schedule() {
    // Buyer 2 goes first through the queue, then the buyers take turns:
    // buyer 2 buys the one ticket, and buyer 1 is told it is sold out.
    let recorded = queue_sale(&["-w", "2", "-t", "1", "--schedule", "2x4,1x4,2x3,1x3,2,1"]);
    let schedule = recorded["schedule"].as_str().unwrap().to_string();
    assert_eq!(
        schedule, "2L,2Q,2U,2A=1,1L,1Q,1U,1A=1,2L,2Q,2U,1L,1Q,1U,2A=1,1A=0",
        "{recorded}"
    );
    let per_worker = recorded["per_worker"].as_array().unwrap();
    assert_eq!(per_worker[0]["bought"], 0, "{recorded}");
    assert_eq!(per_worker[1]["bought"], 1, "{recorded}");
    // The annotated schedule replays step for step, values and all.
    let replayed = queue_sale(&["-w", "2", "-t", "1", "--schedule", &schedule]);
    assert_eq!(replayed["schedule"], schedule.as_str(), "{replayed}");
    assert!(replayed["replay_diverged"].is_null(), "{replayed}");
    assert_eq!(replayed["per_worker"], recorded["per_worker"]);
}

#[test]
fn queue_a_schedule_cannot_take_the_lock_twice() {
    let out = ticketlab()
        .args([
            "sell",
            "-w",
            "2",
            "-t",
            "1",
            "--store",
            "queue",
            "--lock",
            "none",
            "--view",
            "quiet",
            "--schedule",
            "1L,2L",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("buyer 2 waits for the lock held by buyer 1"),
        "{err}"
    );
}

/// Schedules of `n` buyers each running `prog`, a lock attempt never taken
/// while another buyer holds the lock: an enumeration independent of the
/// explorer's traces and weights.
fn schedules(prog: &[char], pcs: &mut Vec<usize>, holder: Option<usize>) -> u64 {
    if pcs.iter().all(|&pc| pc == prog.len()) {
        return 1;
    }
    let mut total = 0;
    for b in 0..pcs.len() {
        let Some(&step) = prog.get(pcs[b]) else {
            continue;
        };
        if step == 'L' && holder.is_some() {
            continue;
        }
        let next = match step {
            'L' => Some(b),
            'U' => None,
            _ => holder,
        };
        pcs[b] += 1;
        total += schedules(prog, pcs, next);
        pcs[b] -= 1;
    }
    total
}

#[test]
fn explore_queue_finds_every_schedule_exact() {
    let found = command_json(
        "explore",
        &["-w", "2", "-t", "1", "--store", "queue", "--lock", "none"],
    );
    // Each buyer: lock, request, unlock, answer for the search, then again
    // for the purchase.
    let prog = ['L', 'Q', 'U', 'A', 'L', 'Q', 'U', 'A'];
    let all = schedules(&prog, &mut vec![0, 0], None);
    assert_eq!(all, 278);
    assert_eq!(found["schedules"], all, "{found}");
    // A trace is an order of the four requests (two per buyer): C(4, 2).
    assert_eq!(found["traces"], 6, "{found}");
    assert_eq!(found["complete"], true, "{found}");
    assert!(found["shortest_failing"].is_null(), "{found}");
    let shares = found["distribution"].as_array().unwrap();
    assert_eq!(shares.len(), 1, "{found}");
    assert_eq!(shares[0]["outcome"], "exact", "{found}");
    assert_eq!(shares[0]["schedules"], all, "{found}");
}
