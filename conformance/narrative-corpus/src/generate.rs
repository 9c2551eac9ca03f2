//! Seeded scenarios beyond the hand-written ones: campaigns of several kinds
//! and benign hard negatives, each on top of days of ordinary traffic so that
//! a detector's baselines have something to measure against.
//!
//! Determinism matters more than realism of the randomness: the same seed
//! must give the same corpus on every platform and release, so the generator
//! uses its own splitmix64 rather than a library whose streams may change.

use std::collections::BTreeSet;

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::{
    Account, AccountKind, Association, Expect, Grant, Label, Message, MessageKind, Role, Scenario,
    Signal, Thread,
};

/// splitmix64 (Steele, Lea and Flood): tiny, fast and well mixed, which is
/// all a corpus generator needs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = hi
            .saturating_sub(lo)
            .saturating_add(1)
            .max(1)
            .unsigned_abs();
        lo.saturating_add(i64::try_from(self.next() % span).unwrap_or(0))
    }

    fn count(&mut self, lo: usize, hi: usize) -> usize {
        let span = (hi.saturating_sub(lo) + 1) as u64;
        lo + usize::try_from(self.next() % span).unwrap_or(0)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let i = self.count(0, items.len().saturating_sub(1));
        &items[i.min(items.len().saturating_sub(1))]
    }

    fn text<'a, S: AsRef<str>>(&mut self, items: &'a [S]) -> &'a str {
        self.pick(items).as_ref()
    }

    /// One of `items`, paraphrased.
    fn reword<S: AsRef<str>>(&mut self, items: &[S]) -> String {
        let chosen = self.text(items).to_string();
        paraphrase(self, &chosen)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.count(0, i);
            items.swap(i, j);
        }
    }
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Local offsets people write from; the twin must cope with all of them.
const OFFSETS: [(i8, i8); 6] = [(0, 0), (0, 0), (2, 0), (-5, 0), (5, 30), (9, 0)];

/// Each person writes from one place: the offset follows from the login.
fn local(login: &str, t: OffsetDateTime) -> OffsetDateTime {
    let i = login.bytes().map(usize::from).sum::<usize>() % OFFSETS.len();
    let (h, m) = OFFSETS[i];
    t.to_offset(UtcOffset::from_hms(h, m, 0).unwrap_or(UtcOffset::UTC))
}

const FIRST: [&str; 32] = [
    "mira", "tomas", "kenji", "ada", "lior", "nadia", "oskar", "priya", "ravi", "sven", "yuki",
    "zora", "felix", "ines", "jonah", "leila", "marco", "noor", "pavel", "rosa", "tariq", "vera",
    "wen", "elio", "agnes", "bruno", "chidi", "dara", "emeka", "freya", "gus", "hana",
];
const LAST: [&str; 16] = [
    "okafor",
    "lindqvist",
    "moreau",
    "tanaka",
    "haddad",
    "novak",
    "reyes",
    "sato",
    "kowalski",
    "brandt",
    "quinn",
    "varga",
    "ito",
    "mensah",
    "arslan",
    "dubois",
];
const OWNERS: [&str; 8] = [
    "lumen-tools",
    "quartzlib",
    "harbor-io",
    "fennel-project",
    "tidewater",
    "corvid-dev",
    "saltmarsh",
    "orchid-labs",
];
const REPOS: [&str; 10] = [
    "zipkit",
    "fastparse",
    "logweave",
    "tinycrypt",
    "yamlet",
    "netprobe",
    "imgscale",
    "chronos-lite",
    "cfgwalk",
    "streamhash",
];
const TOPICS: [&str; 14] = [
    "the Windows build",
    "the config loader",
    "parsing of empty input",
    "the release notes script",
    "the benchmark job",
    "error messages for unknown flags",
    "the streaming decoder",
    "the man page",
    "locale handling in tests",
    "the fuzz target",
    "memory use on large archives",
    "the ARM64 CI runner",
    "the changelog format",
    "the optional zstd feature",
];

/// Everyday traffic, written to be unremarkable: questions, reproductions,
/// reviews and small commits.
const ISSUE_OPENERS: [&str; 6] = [
    "Problem with {t}: on my machine it stops with an error after the second run. Happy to test a fix.",
    "Question about {t}: is the current behaviour intended? The docs read differently to me.",
    "{T} regressed between the last two releases; bisecting now and will report back.",
    "Small papercut in {t}. Not urgent, just noting it so it does not get lost.",
    "Would a patch for {t} be welcome? I would keep it small and add a test.",
    "Tracking issue for {t}. Collecting reports here instead of in three places.",
];
const COMMENTS: [&str; 10] = [
    "I can reproduce this on Linux, not on macOS.",
    "Thanks, the patch fixes it for me.",
    "Could you share the exact command you ran?",
    "This looks like the same root cause as the report from last month.",
    "Not sure this is a bug; the old behaviour was undocumented.",
    "I will take a look at the weekend if nobody beats me to it.",
    "Confirmed on the latest main, with a debug build.",
    "The workaround of setting the env var works in the meantime.",
    "Added a failing test in my branch; fix still pending.",
    "Closing the loop: this was a local misconfiguration on my side.",
];
const REVIEWS: [&str; 5] = [
    "Looks good to me; one naming nit inline.",
    "Please add a test for the empty case, otherwise fine.",
    "Nice cleanup. Can you split the formatting change into its own commit?",
    "Approving; the benchmark numbers look reasonable.",
    "I would rather keep the old flag as an alias for one release.",
];
const COMMITS: [&str; 6] = [
    "Fix {t}",
    "docs: clarify {t}",
    "tests: cover {t}",
    "Refactor {t} without behaviour change",
    "ci: make {t} less flaky",
    "Bump version and update changelog",
];

/// A template with `{t}` or `{T}` filled with a topic.
fn fill(template: &str, topic: &str) -> String {
    let capital: String = {
        let mut c = topic.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default()
    };
    template.replace("{t}", topic).replace("{T}", &capital)
}

/// Words a persona may swap for another, so that messages from the same
/// template are near-duplicates rather than copies.
const SYNONYMS: [(&str, &[&str]); 9] = [
    ("project", &["repo", "library", "package"]),
    ("months", &["ages", "many weeks"]),
    ("please", &["kindly", "pls"]),
    ("maintainer", &["co-maintainer", "second maintainer"]),
    ("merge", &["land", "pull in"]),
    ("now", &["right away", "today", "asap"]),
    ("users", &["people", "downstream users"]),
    ("waiting", &["still waiting", "left waiting"]),
    ("slow", &["glacial", "stalled"]),
];

fn paraphrase(rng: &mut Rng, text: &str) -> String {
    // Sentence order first: the same two sentences in the other order read
    // as a different message to an exact matcher but not to a person.
    let mut sentences: Vec<String> = text
        .split(". ")
        .map(|s| {
            let s = s.trim();
            if s.ends_with(['.', '?', '!']) {
                s.to_string()
            } else {
                format!("{s}.")
            }
        })
        .collect();
    if sentences.len() > 1 && rng.chance(40) {
        rng.shuffle(&mut sentences);
    }
    let text = sentences.join(" ");
    let mut words: Vec<String> = text.split(' ').map(str::to_string).collect();
    for w in &mut words {
        let bare = w.trim_end_matches([',', '.', '!', '?']);
        let tail = w[bare.len()..].to_string();
        if let Some((_, alts)) = SYNONYMS.iter().find(|(k, _)| *k == bare)
            && rng.chance(45)
        {
            *w = format!("{}{tail}", rng.pick(alts));
        }
    }
    let mut out = words.join(" ");
    if rng.chance(30) {
        // Some people do not capitalise or finish their sentences.
        out = out.to_lowercase().trim_end_matches('.').to_string();
    }
    if rng.chance(20) {
        out = format!("{}!!", out.trim_end_matches(['.', '!']));
    }
    out
}

/// Sentences that build pressure, from polite (0) to accusatory (3).
const PRESSURE: [&[&str]; 4] = [
    &[
        "Is the project still maintained? There has been no release in months.",
        "Any news on this? users are waiting for the fix.",
    ],
    &[
        "Progress here is slow and users are waiting.",
        "Patches sit for months without review, that is not sustainable.",
    ],
    &[
        "At this pace the project is effectively dead.",
        "You clearly do not have the time for this any more, and that is fine, but be honest about it.",
    ],
    &[
        "The community deserves better than this, it is time to act now.",
        "If nothing changes this week we will have to recommend a fork to everyone.",
    ],
];

#[derive(Debug, Clone, Copy)]
enum CampaignKind {
    MaintainerPressure,
    Handover,
    MergeBurst,
    CredentialAsk,
    Convergence,
}

const CAMPAIGN_KINDS: [CampaignKind; 5] = [
    CampaignKind::MaintainerPressure,
    CampaignKind::Handover,
    CampaignKind::MergeBurst,
    CampaignKind::CredentialAsk,
    CampaignKind::Convergence,
];

#[derive(Debug, Clone, Copy)]
enum BenignKind {
    SecurityRelease,
    CiOutage,
    ReleaseManager,
    FirstTimer,
    Bots,
    PlusOnes,
    Succession,
}

const BENIGN_KINDS: [BenignKind; 7] = [
    BenignKind::SecurityRelease,
    BenignKind::CiOutage,
    BenignKind::ReleaseManager,
    BenignKind::FirstTimer,
    BenignKind::Bots,
    BenignKind::PlusOnes,
    BenignKind::Succession,
];

/// One scenario under construction.
struct Builder<'r> {
    rng: &'r mut Rng,
    accounts: Vec<Account>,
    maintainers: Vec<String>,
    messages: Vec<Message>,
    grants: Vec<Grant>,
    /// The next free issue or pull request number per repository.
    numbers: Vec<(String, u64)>,
}

impl<'r> Builder<'r> {
    fn new(rng: &'r mut Rng) -> Self {
        Self {
            rng,
            accounts: Vec::new(),
            maintainers: Vec::new(),
            messages: Vec::new(),
            grants: Vec::new(),
            numbers: Vec::new(),
        }
    }

    fn login(&mut self, thin: bool) -> String {
        let taken: BTreeSet<&str> = self.accounts.iter().map(|a| a.login.as_str()).collect();
        loop {
            let first = *self.rng.pick(&FIRST);
            let last = *self.rng.pick(&LAST);
            // Throwaway accounts tend to have a name and a number; long-time
            // members tend to have chosen a handle.
            let login = if thin {
                format!("{first}{last}{}", self.rng.range(10, 9999))
            } else {
                match self.rng.range(0, 2) {
                    0 => format!("{first}-{last}"),
                    1 => format!("{}{last}", &first[..1]),
                    _ => format!("{first}{}", &last[..3]),
                }
            };
            if !taken.contains(login.as_str()) {
                return login;
            }
        }
    }

    fn account(&mut self, created: Option<OffsetDateTime>, thin: bool) -> String {
        let login = self.login(thin);
        self.accounts.push(Account {
            login: login.clone(),
            created_at: created.map(ts),
            kind: AccountKind::User,
        });
        login
    }

    fn bot(&mut self, login: &str, created: OffsetDateTime) -> String {
        self.accounts.push(Account {
            login: login.into(),
            created_at: Some(ts(created)),
            kind: AccountKind::Bot,
        });
        login.into()
    }

    /// An account years old.
    fn established(&mut self, start: OffsetDateTime) -> String {
        let created = start - Duration::days(self.rng.range(3 * 365, 11 * 365));
        self.account(Some(created), false)
    }

    fn thread(&mut self, repo: &str) -> u64 {
        if let Some((_, n)) = self.numbers.iter_mut().find(|(r, _)| r == repo) {
            *n += 1;
            return *n;
        }
        let n = u64::try_from(self.rng.range(40, 3000)).unwrap_or(40);
        self.numbers.push((repo.into(), n));
        n
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per message field keeps the call sites readable as a table"
    )]
    fn say(
        &mut self,
        repo: &str,
        kind: MessageKind,
        thread: Thread,
        author: &str,
        association: Association,
        at: OffsetDateTime,
        body: String,
        mentions: Vec<String>,
    ) {
        let id = format!("m{}", self.messages.len() + 1);
        let at = local(author, at);
        self.messages.push(Message {
            id,
            repository: repo.into(),
            kind,
            thread,
            author: author.into(),
            author_association: association,
            at: ts(at),
            body,
            mentions,
        });
    }

    /// A comment without mentions on an issue or pull request: most of
    /// what any conversation consists of.
    fn comment(
        &mut self,
        repo: &str,
        thread: u64,
        author: &str,
        association: Association,
        at: OffsetDateTime,
        body: impl Into<String>,
    ) {
        let kind = MessageKind::IssueComment;
        let thread = Thread::Number(thread);
        self.say(
            repo,
            kind,
            thread,
            author,
            association,
            at,
            body.into(),
            Vec::new(),
        );
    }

    /// Days of ordinary traffic in `repo` before `start`, by `people` (and
    /// the maintainers), so that prior activity and a per-repository rate
    /// are visible.
    fn background(&mut self, repo: &str, people: &[String], start: OffsetDateTime, days: i64) {
        let maintainers = self.maintainers.clone();
        let mut everyone: Vec<String> = people.to_vec();
        everyone.extend(maintainers.iter().cloned());
        let mut open: Vec<u64> = Vec::new();
        for day in (1..=days).rev() {
            let per_day = self.rng.count(1, 4);
            for _ in 0..per_day {
                let at = start - Duration::days(day)
                    + Duration::minutes(self.rng.range(6 * 60, 21 * 60));
                let author = self.rng.pick(&everyone).clone();
                let association = if maintainers.contains(&author) {
                    Association::Owner
                } else {
                    *self.rng.pick(&[
                        Association::Contributor,
                        Association::Collaborator,
                        Association::Member,
                    ])
                };
                let topic = *self.rng.pick(&TOPICS);
                let roll = self.rng.range(0, 9);
                if open.is_empty() || roll < 2 {
                    let n = self.thread(repo);
                    open.push(n);
                    let body = fill(self.rng.text(&ISSUE_OPENERS), topic);
                    self.say(
                        repo,
                        MessageKind::Issue,
                        Thread::Number(n),
                        &author,
                        association,
                        at,
                        body,
                        Vec::new(),
                    );
                } else if roll < 6 {
                    let n = *self.rng.pick(&open);
                    let body = (*self.rng.pick(&COMMENTS)).to_string();
                    self.say(
                        repo,
                        MessageKind::IssueComment,
                        Thread::Number(n),
                        &author,
                        association,
                        at,
                        body,
                        Vec::new(),
                    );
                } else if roll < 7 {
                    let n = self.thread(repo);
                    let body = format!("This changes {topic}. Tests included.");
                    self.say(
                        repo,
                        MessageKind::PullRequest,
                        Thread::Number(n),
                        &author,
                        association,
                        at,
                        body,
                        Vec::new(),
                    );
                    let reviewer = self.rng.pick(&maintainers).clone();
                    let body = (*self.rng.pick(&REVIEWS)).to_string();
                    let later = at + Duration::hours(self.rng.range(2, 30));
                    self.say(
                        repo,
                        MessageKind::Review,
                        Thread::Number(n),
                        &reviewer,
                        Association::Owner,
                        later,
                        body,
                        Vec::new(),
                    );
                } else {
                    let body = fill(self.rng.text(&COMMITS), topic);
                    self.say(
                        repo,
                        MessageKind::Commit,
                        Thread::Branch("main".into()),
                        &author,
                        association,
                        at,
                        body,
                        Vec::new(),
                    );
                }
            }
        }
    }

    fn finish(
        mut self,
        name: String,
        label: Label,
        modelled_on: String,
        expect: Expect,
    ) -> Scenario {
        // Background traffic and the event interleave in time; a corpus
        // reads best in order, and message ids stay as they were assigned.
        self.messages.sort_by_key(|m| crate::parse_time(&m.at));
        Scenario {
            name,
            label,
            modelled_on,
            accounts: self.accounts,
            maintainers: self.maintainers,
            messages: self.messages,
            grants: self.grants,
            expect,
        }
    }
}

fn repository(rng: &mut Rng) -> String {
    format!("{}/{}", rng.pick(&OWNERS), rng.pick(&REPOS))
}

fn second_repository(rng: &mut Rng, first: &str) -> String {
    loop {
        let r = repository(rng);
        if r != first {
            return r;
        }
    }
}

/// Personas created close together (a cohort) or spread over two months,
/// all young when they start writing; some of unknown age.
fn personas(
    b: &mut Builder<'_>,
    n: usize,
    start: OffsetDateTime,
    cohort: bool,
) -> (Vec<String>, bool) {
    let cohort_day = start - Duration::days(b.rng.range(5, 40));
    let mut out = Vec::new();
    let mut any_known = false;
    for _ in 0..n {
        let created = if cohort {
            cohort_day + Duration::hours(b.rng.range(0, 96))
        } else {
            start - Duration::days(b.rng.range(1, 60))
        };
        // A quarter of them hide their age from the twin, as accounts the
        // connector saw only through a comment do.
        let known = !b.rng.chance(25);
        any_known |= known;
        out.push(b.account(known.then_some(created), true));
    }
    (out, any_known)
}

fn campaign(rng: &mut Rng, seed: u64, index: usize) -> Scenario {
    let kind = CAMPAIGN_KINDS[index % CAMPAIGN_KINDS.len()];
    let start = OffsetDateTime::UNIX_EPOCH
        + Duration::days(19_400 + rng.range(0, 700))
        + Duration::hours(rng.range(0, 23));
    let mut b = Builder::new(rng);
    let repo = repository(b.rng);
    let two_repos = b.rng.chance(30);
    let other = second_repository(b.rng, &repo);
    let maintainer = b.established(start);
    b.maintainers.push(maintainer.clone());
    let regulars: Vec<String> = (0..b.rng.count(3, 6))
        .map(|_| b.established(start))
        .collect();
    let days = b.rng.range(10, 30);
    b.background(&repo, &regulars, start, days);
    if two_repos {
        b.background(&other, &regulars, start, days);
    }
    let mut signals = BTreeSet::from([Signal::NearDuplicate]);
    let mut beneficiaries = Vec::new();
    let repos: Vec<String> = if two_repos {
        vec![repo.clone(), other.clone()]
    } else {
        vec![repo.clone()]
    };

    let (participants, what) = match kind {
        CampaignKind::MaintainerPressure => {
            let n = b.rng.count(2, 4);
            let cohort = b.rng.chance(40);
            let (people, known) = personas(&mut b, n, start, cohort);
            // The helper has been around for a year or two, with real
            // contributions, before the pressure starts.
            let helper = {
                let created = start - Duration::days(b.rng.range(200, 700));
                b.account(Some(created), false)
            };
            b.background(&repo, std::slice::from_ref(&helper), start, 6);
            let thread = b.thread(&repo);
            let weeks = b.rng.range(3, 8);
            let total = b.rng.count(n * 2, n * 3);
            let asks = [
                format!("please add {helper} as a maintainer, they already do most of the work."),
                format!(
                    "Why not give {helper} commit access? They clearly care about the project."
                ),
                format!(
                    "The project needs a maintainer who can merge now; {helper} is the obvious choice."
                ),
            ];
            for j in 0..total {
                let who = people[j % n].clone();
                let level = (j * 4 / total).min(3);
                let at = start
                    + Duration::hours(
                        weeks * 7 * 24 * i64::try_from(j).unwrap_or(0)
                            / i64::try_from(total).unwrap_or(1),
                    );
                let mut body = b.rng.reword(PRESSURE[level]);
                if level >= 1 {
                    body = format!("{body} {}", b.rng.reword(&asks));
                }
                let (kind, thread) = if j == 0 {
                    (MessageKind::Issue, thread)
                } else {
                    (MessageKind::IssueComment, thread)
                };
                b.say(
                    &repo,
                    kind,
                    Thread::Number(thread),
                    &who,
                    Association::None,
                    at,
                    body,
                    vec![maintainer.clone()],
                );
            }
            let end = start + Duration::weeks(weeks);
            let text = "I hear you. I have limited time at the moment; more help is welcome and I will look at the review queue.";
            b.comment(
                &repo,
                thread,
                &maintainer,
                Association::Owner,
                end + Duration::hours(5),
                text,
            );
            if b.rng.chance(70) {
                let role = *b.rng.pick(&[Role::Write, Role::Maintain]);
                for r in &repos {
                    b.grants.push(Grant {
                        account: helper.clone(),
                        repository: r.clone(),
                        role,
                        at: ts(end + Duration::days(b.rng.range(7, 40))),
                    });
                }
                signals.insert(Signal::PrivilegeGrant);
            }
            signals.extend([Signal::Pressure, Signal::PrivilegeAsk]);
            if known {
                signals.insert(Signal::FreshAccount);
            }
            if cohort && known {
                signals.insert(Signal::Cohort);
            }
            beneficiaries.push(helper);
            (
                people,
                "maintainer pressure to add a helpful contributor as maintainer",
            )
        }
        CampaignKind::Handover => {
            let n = b.rng.count(2, 3);
            let (people, known) = personas(&mut b, n, start, false);
            let stranger = people[0].clone();
            let thread = b.thread(&repo);
            let opener = [
                "This package looks abandoned: no release in months and open issues pile up. I would like to take over maintenance, please add me as owner.",
                "Happy to adopt this project since it seems unmaintained. please transfer publish rights to me and I will handle releases.",
            ];
            let body = b.rng.reword(&opener);
            b.say(
                &repo,
                MessageKind::Issue,
                Thread::Number(thread),
                &stranger,
                Association::None,
                start,
                body,
                vec![maintainer.clone()],
            );
            for (j, p) in people.iter().enumerate().skip(1) {
                let support = [
                    format!("+1, {stranger} taking over would be great for users."),
                    format!("Agree, please hand it to {stranger} now rather than let it rot."),
                ];
                let body = b.rng.reword(&support);
                let at = start + Duration::days(b.rng.range(1, 6) + i64::try_from(j).unwrap_or(0));
                b.say(
                    &repo,
                    MessageKind::IssueComment,
                    Thread::Number(thread),
                    p,
                    Association::None,
                    at,
                    body,
                    vec![maintainer.clone()],
                );
            }
            let reply_at = start + Duration::days(b.rng.range(8, 20));
            b.comment(
                &repo,
                thread,
                &maintainer,
                Association::Owner,
                reply_at,
                "I do not use this any more. Fine, I have given you access; good luck with it.",
            );
            if b.rng.chance(75) {
                b.grants.push(Grant {
                    account: stranger.clone(),
                    repository: repo.clone(),
                    role: *b.rng.pick(&[Role::Admin, Role::Maintain]),
                    at: ts(reply_at + Duration::hours(1)),
                });
                signals.insert(Signal::PrivilegeGrant);
            }
            signals.insert(Signal::PrivilegeAsk);
            if known {
                signals.insert(Signal::FreshAccount);
            }
            // A stranger and one or two friends do not yet sound alike.
            signals.remove(&Signal::NearDuplicate);
            beneficiaries.push(stranger);
            (
                people,
                "handover of an apparently abandoned package to a stranger",
            )
        }
        CampaignKind::MergeBurst => {
            let n = b.rng.count(4, 8);
            let (people, known) = personas(&mut b, n, start, true);
            let pr = b.thread(&repo);
            let author = people[0].clone();
            b.say(
                &repo,
                MessageKind::PullRequest,
                Thread::Number(pr),
                &author,
                Association::FirstTimeContributor,
                start,
                "Adds a small helper for release builds. Please merge, it is needed now.".into(),
                Vec::new(),
            );
            let core = [
                "please merge this now, users are waiting for the release.",
                "Why is this not merged yet? please release now.",
                "merge and release please, we are all waiting on this.",
            ];
            let base = *b.rng.pick(&core);
            for (j, p) in people.iter().enumerate() {
                let at = start
                    + Duration::minutes(b.rng.range(5, 6 * 60))
                    + Duration::minutes(i64::try_from(j).unwrap_or(0));
                let body = paraphrase(b.rng, base);
                let mentions = if b.rng.chance(50) {
                    vec![maintainer.clone()]
                } else {
                    Vec::new()
                };
                b.say(
                    &repo,
                    MessageKind::IssueComment,
                    Thread::Number(pr),
                    p,
                    Association::None,
                    at,
                    body,
                    mentions,
                );
            }
            signals.extend([Signal::Burst, Signal::Pressure]);
            if known {
                signals.extend([Signal::FreshAccount, Signal::Cohort]);
            }
            if b.rng.chance(30) {
                b.grants.push(Grant {
                    account: author.clone(),
                    repository: repo.clone(),
                    role: Role::Triage,
                    at: ts(start + Duration::days(2)),
                });
                signals.insert(Signal::PrivilegeGrant);
                beneficiaries.push(author);
            }
            (
                people,
                "burst of near-identical merge and release demands from a cohort",
            )
        }
        CampaignKind::CredentialAsk => {
            let n = b.rng.count(2, 3);
            let cohort = b.rng.chance(50);
            let (people, known) = personas(&mut b, n, start, cohort);
            let asks = [
                "As the security team we need a deploy key added to this repository today to unblock the release, please add the key below.",
                "Security team here: please share the publish token with us so we can rotate it, the release is blocked until then.",
                "please disable the required signature check for one day so the security release can go out now.",
            ];
            let thread = b.thread(&repo);
            for (j, p) in people.iter().enumerate() {
                let at =
                    start + Duration::hours(b.rng.range(1, 30) * i64::try_from(j).unwrap_or(0));
                let body = b.rng.reword(&asks);
                let kind = if j == 0 {
                    MessageKind::Issue
                } else {
                    MessageKind::IssueComment
                };
                b.say(
                    &repo,
                    kind,
                    Thread::Number(thread),
                    p,
                    Association::None,
                    at,
                    body,
                    vec![maintainer.clone()],
                );
            }
            if b.rng.chance(35) {
                b.grants.push(Grant {
                    account: people[0].clone(),
                    repository: repo.clone(),
                    role: Role::Write,
                    at: ts(start + Duration::days(1)),
                });
                signals.insert(Signal::PrivilegeGrant);
            }
            signals.extend([Signal::PrivilegeAsk, Signal::Pressure]);
            if known {
                signals.insert(Signal::FreshAccount);
            }
            beneficiaries.push(people[0].clone());
            (
                people,
                "credential or check-bypass ask posing as a security team",
            )
        }
        CampaignKind::Convergence => {
            let n = b.rng.count(3, 6);
            let cohort = b.rng.chance(60);
            let (people, known) = personas(&mut b, n, start, cohort);
            let lines = [
                format!("@{maintainer} please review and merge, this has been waiting for months."),
                format!("@{maintainer} can you look at this now? users are blocked."),
                format!(
                    "@{maintainer} this project needs another maintainer, you are the bottleneck."
                ),
            ];
            for (j, p) in people.iter().enumerate() {
                let r = &repos[j % repos.len()];
                let thread = b.thread(r);
                let at =
                    start + Duration::hours(b.rng.range(2, 20) * i64::try_from(j).unwrap_or(0));
                let body = b.rng.reword(&lines);
                b.say(
                    r,
                    MessageKind::Issue,
                    Thread::Number(thread),
                    p,
                    Association::None,
                    at,
                    body,
                    vec![maintainer.clone()],
                );
            }
            signals.extend([Signal::Convergence, Signal::Pressure]);
            if known {
                signals.insert(Signal::FreshAccount);
            }
            (
                people,
                "several thin accounts converging on one maintainer across threads",
            )
        }
    };
    let signals = signals.into_iter().collect();
    b.finish(
        format!("gen-{seed}-campaign-{index}"),
        Label::Campaign,
        format!("generated (seed {seed}): {what}"),
        Expect {
            campaign: true,
            participants,
            signals,
            beneficiaries,
        },
    )
}

fn benign(rng: &mut Rng, seed: u64, index: usize) -> Scenario {
    let kind = BENIGN_KINDS[index % BENIGN_KINDS.len()];
    let start = OffsetDateTime::UNIX_EPOCH
        + Duration::days(19_400 + rng.range(0, 700))
        + Duration::hours(rng.range(0, 23));
    let mut b = Builder::new(rng);
    let repo = repository(b.rng);
    let maintainer = b.established(start);
    b.maintainers.push(maintainer.clone());
    let regulars: Vec<String> = (0..b.rng.count(4, 10))
        .map(|_| b.established(start))
        .collect();
    let days = b.rng.range(14, 30);
    b.background(&repo, &regulars, start, days);
    let mut signals = BTreeSet::new();
    let what = match kind {
        BenignKind::SecurityRelease => {
            let reporter = regulars[0].clone();
            let n = b.thread(&repo);
            let text = "The fix for the advisory we discussed privately is merged. Could we cut a patch release today? Distributions are waiting on the embargo date.";
            b.say(
                &repo,
                MessageKind::Issue,
                Thread::Number(n),
                &reporter,
                Association::Member,
                start,
                text.into(),
                vec![maintainer.clone()],
            );
            for (j, r) in regulars.iter().enumerate().skip(1).take(3) {
                let at = start + Duration::hours(i64::try_from(j).unwrap_or(0));
                let body = (*b.rng.pick(&[
                    "Agreed, I checked the backport and it applies cleanly.",
                    "Release notes draft is in the wiki.",
                    "Tested the patch on our packaging, fine.",
                ]))
                .to_string();
                b.comment(&repo, n, r, Association::Collaborator, at, body);
            }
            b.comment(
                &repo,
                n,
                &maintainer,
                Association::Owner,
                start + Duration::hours(6),
                "Tagged and published. Thanks all.",
            );
            signals.insert(Signal::Pressure);
            "urgent security release requested by a long-time member"
        }
        BenignKind::CiOutage => {
            let n = b.thread(&repo);
            let text = "CI is red on every branch since this morning: the runner image lost the cross compiler. This is blocking all merges.";
            b.say(
                &repo,
                MessageKind::Issue,
                Thread::Number(n),
                &regulars[0],
                Association::Collaborator,
                start,
                text.into(),
                Vec::new(),
            );
            for (j, r) in regulars.iter().enumerate().skip(1) {
                let at = start
                    + Duration::minutes(b.rng.range(3, 90) + 5 * i64::try_from(j).unwrap_or(0));
                let body = (*b.rng.pick(&[
                    "Same here, this is blocking us.",
                    "Blocking our release branch too.",
                    "Seeing it on my PR as well.",
                    "This is blocking us, any ETA?",
                ]))
                .to_string();
                b.comment(&repo, n, r, Association::Collaborator, at, body);
            }
            b.comment(
                &repo,
                n,
                &maintainer,
                Association::Owner,
                start + Duration::hours(4),
                "Pinned the previous image; CI is green again.",
            );
            signals.extend([Signal::Burst, Signal::Pressure, Signal::NearDuplicate]);
            "CI outage where established collaborators say it is blocking them"
        }
        BenignKind::ReleaseManager => {
            let rm = regulars[0].clone();
            let n = b.thread(&repo);
            let text = "Release checklist for the next minor: freeze on Friday, tag on Monday. Please land anything you need before the freeze.";
            b.say(
                &repo,
                MessageKind::Issue,
                Thread::Number(n),
                &rm,
                Association::Member,
                start,
                text.into(),
                vec![maintainer.clone()],
            );
            b.comment(
                &repo,
                n,
                &rm,
                Association::Member,
                start + Duration::days(3),
                "Freeze is in effect. Cutting the release candidate now.",
            );
            signals.insert(Signal::Pressure);
            "release manager asking to cut a release on schedule"
        }
        BenignKind::FirstTimer => {
            let created = start - Duration::days(b.rng.range(1, 20));
            let newcomer = b.account(Some(created), true);
            let n = b.thread(&repo);
            let text = "First contribution here: this fixes a typo in the error for unknown flags and adds a test. Happy to change anything.";
            b.say(
                &repo,
                MessageKind::PullRequest,
                Thread::Number(n),
                &newcomer,
                Association::FirstTimeContributor,
                start,
                text.into(),
                Vec::new(),
            );
            b.say(
                &repo,
                MessageKind::IssueComment,
                Thread::Number(n),
                &newcomer,
                Association::FirstTimeContributor,
                start + Duration::days(9),
                "Gentle ping for a review when someone has time. Thank you!".into(),
                vec![maintainer.clone()],
            );
            b.say(
                &repo,
                MessageKind::Review,
                Thread::Number(n),
                &maintainer,
                Association::Owner,
                start + Duration::days(10),
                "Thanks, and welcome! Merging.".into(),
                Vec::new(),
            );
            signals.insert(Signal::FreshAccount);
            "first-time contributor politely asking for review"
        }
        BenignKind::Bots => {
            let bot = b.bot("dependabot[bot]", start - Duration::days(2500));
            for j in 0..b.rng.count(4, 8) {
                let n = b.thread(&repo);
                let dep = *b
                    .rng
                    .pick(&["serde", "tokio", "clap", "regex", "time", "url"]);
                let at = start + Duration::minutes(7 * i64::try_from(j).unwrap_or(0));
                let body = format!(
                    "Bumps {dep} from 1.{j}.0 to 1.{}.0. Release notes and commits are linked below.",
                    j + 1
                );
                b.say(
                    &repo,
                    MessageKind::PullRequest,
                    Thread::Number(n),
                    &bot,
                    Association::None,
                    at,
                    body,
                    Vec::new(),
                );
            }
            signals.extend([Signal::NearDuplicate, Signal::Burst]);
            "a dependency bot opening near-identical pull requests"
        }
        BenignKind::PlusOnes => {
            let n = b.thread(&repo);
            b.say(
                &repo,
                MessageKind::Issue,
                Thread::Number(n),
                &regulars[0],
                Association::Contributor,
                start,
                "Crash on startup with the new release when the config file is missing.".into(),
                Vec::new(),
            );
            for (j, r) in regulars.iter().enumerate().skip(1) {
                let at = start
                    + Duration::hours(b.rng.range(1, 20))
                    + Duration::minutes(i64::try_from(j).unwrap_or(0));
                let body = (*b.rng.pick(&[
                    "+1",
                    "Same here.",
                    "same here, on Debian.",
                    "+1, also seeing this",
                ]))
                .to_string();
                b.comment(&repo, n, r, Association::Contributor, at, body);
            }
            signals.extend([Signal::NearDuplicate, Signal::Burst]);
            "many +1 comments from established users on a popular bug"
        }
        BenignKind::Succession => {
            let heir = regulars[0].clone();
            let n = b.thread(&repo);
            let text = format!(
                "After many years I am stepping back. {heir} has reviewed most changes for a long time and agreed to take over; I will give them maintain access next week."
            );
            b.say(
                &repo,
                MessageKind::Issue,
                Thread::Number(n),
                &maintainer,
                Association::Owner,
                start,
                text,
                vec![heir.clone()],
            );
            b.comment(
                &repo,
                n,
                &heir,
                Association::Collaborator,
                start + Duration::hours(3),
                "Thank you for the trust. Nothing changes in the release process for now.",
            );
            b.grants.push(Grant {
                account: heir,
                repository: repo.clone(),
                role: Role::Maintain,
                at: ts(start + Duration::days(7)),
            });
            "planned succession to a long-time collaborator, announced by the maintainer"
        }
    };
    b.finish(
        format!("gen-{seed}-benign-{index}"),
        Label::Benign,
        format!("generated (seed {seed}): {what}"),
        Expect {
            campaign: false,
            participants: Vec::new(),
            signals: signals.into_iter().collect(),
            beneficiaries: Vec::new(),
        },
    )
}

/// `campaigns` campaign scenarios followed by `benign` benign ones, the same
/// for the same arguments. The kinds rotate so that any count of five or
/// more covers every campaign kind, and seven or more every benign kind.
pub fn generate(seed: u64, campaigns: usize, benign_count: usize) -> Vec<Scenario> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(campaigns + benign_count);
    for i in 0..campaigns {
        out.push(campaign(&mut rng, seed, i));
    }
    for i in 0..benign_count {
        out.push(benign(&mut rng, seed, i));
    }
    out
}
