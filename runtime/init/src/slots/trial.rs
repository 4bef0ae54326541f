//! Watching a trial boot: it commits at the server's first READY (which comes only after its
//! start-up golden check passed) and rolls back when the deadline passes or the server keeps
//! exiting before READY.

use std::time::{Duration, Instant};

/// Exits before READY that end a trial.
pub const MAX_EXITS: u32 = 3;

#[derive(Debug)]
pub struct TrialWatch {
    pub version: String,
    deadline: Instant,
    exits: u32,
    last_exit: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Commit,
    Wait,
    /// Why, in a sentence.
    RollBack(String),
}

impl TrialWatch {
    pub fn new(version: &str, started: Instant, deadline: Duration) -> TrialWatch {
        TrialWatch {
            version: version.into(),
            deadline: started + deadline,
            exits: 0,
            last_exit: None,
        }
    }

    /// The server exited (before READY: a trial ends at the first READY).
    pub fn server_exited(&mut self, status: &str) {
        self.exits += 1;
        self.last_exit = Some(status.into());
    }

    /// What to do now; `start_failure` is the server's own account of its last failed start.
    pub fn verdict(&self, now: Instant, ready: bool, start_failure: Option<&str>) -> Verdict {
        if ready {
            return Verdict::Commit;
        }
        let why = if self.exits >= MAX_EXITS {
            format!(
                "the server exited {} times without becoming READY",
                self.exits
            )
        } else if now >= self.deadline {
            "the server did not become READY before system.commit_deadline_secs".to_string()
        } else {
            return Verdict::Wait;
        };
        let mut reason = format!(
            "the trial boot of version {} did not commit: {why}",
            self.version
        );
        if let Some(status) = &self.last_exit {
            reason.push_str(&format!(" (last exit {status})"));
        }
        if let Some(text) = start_failure.map(str::trim).filter(|t| !t.is_empty()) {
            reason.push_str(&format!(": {text}"));
        }
        Verdict::RollBack(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_commits_and_silence_waits_until_the_deadline() {
        let start = Instant::now();
        let watch = TrialWatch::new("2", start, Duration::from_secs(180));
        assert_eq!(watch.verdict(start, true, None), Verdict::Commit);
        assert_eq!(
            watch.verdict(start + Duration::from_secs(179), false, None),
            Verdict::Wait
        );
        let Verdict::RollBack(why) = watch.verdict(start + Duration::from_secs(180), false, None)
        else {
            panic!("the deadline passed")
        };
        assert!(
            why.contains("version 2") && why.contains("commit_deadline_secs"),
            "{why}"
        );
    }

    #[test]
    fn three_exits_before_ready_roll_back_with_the_servers_reason() {
        let start = Instant::now();
        let mut watch = TrialWatch::new("2", start, Duration::from_secs(180));
        watch.server_exited("exit:3");
        watch.server_exited("exit:3");
        assert_eq!(watch.verdict(start, false, None), Verdict::Wait);
        watch.server_exited("exit:3");
        let Verdict::RollBack(why) = watch.verdict(
            start,
            false,
            Some("model 'm': the golden inference gave ...\n"),
        ) else {
            panic!("three exits")
        };
        assert!(why.contains("exited 3 times"), "{why}");
        assert!(why.contains("last exit exit:3"), "{why}");
        assert!(why.ends_with("the golden inference gave ..."), "{why}");
    }
}
