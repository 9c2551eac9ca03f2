//! From messages to campaigns: each message's cues and its author's
//! footprint, near-duplicates across accounts, suspect messages grouped by
//! target and time, and each group's signals and risk score.

use std::collections::{BTreeMap, BTreeSet};

use org_mesh_plugin::detector::Evidence;
use org_mesh_plugin::types::Provenance;

use crate::config::Settings;
use crate::signal::{Ask, Cue, Named, Signal};
use crate::text::{self, Sketch};
use crate::twin::{Account, DAY, Message, Time, Twin, date, seconds};

/// What one message says and who said it, as the signals need it.
#[derive(Debug, Default, Clone)]
struct Features {
    cues: BTreeSet<Cue>,
    asks: BTreeSet<Ask>,
    /// Not a bot, and without standing in the organisation when it wrote:
    /// no owner, member or collaborator association, no write access, and
    /// few earlier messages.
    low_footprint: bool,
    /// Low-footprint and not an aged account: fresh, or of unknown age.
    /// Copies and cohorts count only such accounts, since many long-standing
    /// users saying "me too" is how popular bugs look.
    thin: bool,
    fresh: bool,
    /// The author's account age in days when it wrote, when known.
    age_days: Option<f64>,
    earlier: usize,
    /// Accounts with write access that the message mentions.
    pressed: Vec<String>,
}

/// One campaign: suspect messages about one target, close in time.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// Indices into the twin's messages, in time order.
    pub messages: Vec<usize>,
    pub participants: BTreeSet<String>,
    pub repositories: BTreeSet<String>,
    pub pressed: BTreeSet<String>,
    pub threads: BTreeSet<String>,
    pub beneficiaries: BTreeSet<String>,
    pub first: Time,
    pub last: Time,
    pub scores: BTreeMap<Signal, f64>,
    pub evidence: Vec<Evidence>,
    pub risk: f64,
}

impl Campaign {
    pub fn signals(&self) -> impl Iterator<Item = Signal> + '_ {
        self.scores
            .iter()
            .filter(|(_, s)| **s > 0.0)
            .map(|(signal, _)| *signal)
    }

    /// The repository most of its messages were posted in.
    pub fn main_repository(&self, twin: &Twin) -> Option<String> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for i in &self.messages {
            if let Some(r) = &twin.messages[*i].repository {
                *counts.entry(r.as_str()).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(r, _)| r.to_string())
    }
}

const ESTABLISHED_ASSOCIATIONS: [&str; 3] = ["OWNER", "MEMBER", "COLLABORATOR"];
const NEWCOMER_ASSOCIATIONS: [&str; 3] = ["NONE", "FIRST_TIMER", "FIRST_TIME_CONTRIBUTOR"];

/// Every campaign in the twin, scored, strongest first; those below the
/// threshold included, so that the caller decides what to report.
pub fn find(twin: &Twin, settings: &Settings) -> Vec<Campaign> {
    let config = &settings.config;
    let window = seconds(config.window_days);
    let said: Vec<Option<(BTreeSet<Cue>, BTreeSet<Ask>)>> = twin
        .messages
        .iter()
        .map(|m| cues_and_asks(twin, settings, m))
        .collect();
    // An author's standing comes from ordinary contributions: six pressure
    // messages in a week do not make anyone established.
    let mut ordinary: BTreeMap<&str, Vec<Time>> = BTreeMap::new();
    for (m, s) in twin.messages.iter().zip(&said) {
        if let (Some(author), Some((cues, asks))) = (&m.author, s)
            && cues.is_empty()
            && asks.is_empty()
        {
            ordinary.entry(author.as_str()).or_default().push(m.at);
        }
    }
    let features: Vec<Option<Features>> = twin
        .messages
        .iter()
        .zip(said)
        .map(|(m, s)| {
            let (cues, asks) = s?;
            let earlier = m.author.as_deref().map_or(0, |a| {
                ordinary
                    .get(a)
                    .map_or(0, |times| times.partition_point(|t| *t < m.at))
            });
            Some(features(twin, settings, m, cues, asks, earlier))
        })
        .collect();

    let duplicates = near_duplicates(twin, settings, &features, window);
    let mut duplicated: BTreeSet<usize> = BTreeSet::new();
    for (a, b, _) in &duplicates {
        duplicated.insert(*a);
        duplicated.insert(*b);
    }

    let suspect: BTreeSet<usize> = (0..twin.messages.len())
        .filter(|i| {
            features[*i].as_ref().is_some_and(|f| {
                f.low_footprint
                    && (!f.cues.is_empty() || !f.asks.is_empty() || duplicated.contains(i))
            })
        })
        .collect();

    // Suspect messages join when they follow each other within the window
    // and share a repository, a mentioned account, or an author (or one
    // mentions the other's author): a campaign moves across threads and
    // repositories but keeps its targets and its voices. One that goes on
    // for months stays one as long as it never pauses that long.
    let mut groups = UnionFind::new(twin.messages.len());
    let mut last_on: BTreeMap<String, usize> = BTreeMap::new();
    for &i in &suspect {
        let m = &twin.messages[i];
        let mut targets: Vec<String> = m.repository.iter().cloned().collect();
        targets.extend(m.mentions.iter().map(|a| format!("account {a}")));
        targets.extend(m.author.iter().map(|a| format!("account {a}")));
        for target in targets {
            if let Some(&j) = last_on.get(&target)
                && m.at - twin.messages[j].at <= window
            {
                groups.join(i, j);
            }
            last_on.insert(target, i);
        }
    }
    for (a, b, _) in &duplicates {
        if suspect.contains(a) && suspect.contains(b) {
            groups.join(*a, *b);
        }
    }
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in &suspect {
        members.entry(groups.root(i)).or_default().push(i);
    }

    let daily = daily_counts(twin, &features);
    let mut campaigns: Vec<Campaign> = members
        .into_values()
        .map(|messages| score(twin, settings, &features, &duplicates, &daily, messages))
        .collect();
    campaigns.sort_by(|a, b| {
        b.risk
            .total_cmp(&a.risk)
            .then_with(|| a.first.cmp(&b.first))
            .then_with(|| a.messages.cmp(&b.messages))
    });
    campaigns
}

/// The cues and asks of a message; `None` for a message without a known
/// author, or by a bot or an ignored account, which the signals leave out.
fn cues_and_asks(
    twin: &Twin,
    settings: &Settings,
    m: &Message,
) -> Option<(BTreeSet<Cue>, BTreeSet<Ask>)> {
    let author = m.author.as_deref()?;
    let login = twin.login(author);
    if twin.accounts.get(author).is_some_and(|a| a.bot)
        || settings
            .config
            .ignore_accounts
            .iter()
            .any(|i| i.eq_ignore_ascii_case(login))
    {
        return None;
    }
    let words = text::words(&m.text);
    let cues = settings
        .cues
        .iter()
        .filter(|(_, p)| p.found_in(&words))
        .map(|(c, _)| *c)
        .collect();
    let asks = settings
        .asks
        .iter()
        .filter(|(_, p)| p.found_in(&words))
        .map(|(a, _)| *a)
        .collect();
    Some((cues, asks))
}

fn features(
    twin: &Twin,
    settings: &Settings,
    m: &Message,
    cues: BTreeSet<Cue>,
    asks: BTreeSet<Ask>,
    earlier: usize,
) -> Features {
    let author = m.author.as_deref().unwrap_or_default();
    let association = m.association.as_deref().unwrap_or("NONE");
    let established = ESTABLISHED_ASSOCIATIONS.contains(&association)
        || twin.could_write_anywhere(author, m.at)
        || earlier >= settings.config.established_messages;
    let age_days = twin
        .accounts
        .get(author)
        .and_then(|a| a.created_at)
        .map(|created| (m.at - created) as f64 / DAY);
    let young = age_days.map(|days| days < settings.config.fresh_account_days);
    let fresh = match young {
        Some(young) => young,
        None => NEWCOMER_ASSOCIATIONS.contains(&association) && earlier == 0,
    };
    let pressed = m
        .mentions
        .iter()
        .filter(|a| *a != author && twin.could_write_anywhere(a, m.at))
        .cloned()
        .collect();
    Features {
        cues,
        asks,
        low_footprint: !established,
        thin: !established && young != Some(false),
        fresh,
        age_days,
        earlier,
        pressed,
    }
}

/// Pairs of messages from distinct thin authors, within the window of each
/// other, whose sketches are at least the configured similarity.
fn near_duplicates(
    twin: &Twin,
    settings: &Settings,
    features: &[Option<Features>],
    window: Time,
) -> Vec<(usize, usize, f64)> {
    let sketches: Vec<(usize, Sketch)> = twin
        .messages
        .iter()
        .enumerate()
        .filter(|(i, _)| features[*i].as_ref().is_some_and(|f| f.thin))
        .filter_map(|(i, m)| {
            let words = text::words(&m.text);
            if words.len() < settings.config.duplicate_min_words {
                return None;
            }
            Sketch::of(&words, text::SHINGLE).map(|s| (i, s))
        })
        .collect();
    let by_index: BTreeMap<usize, &Sketch> = sketches.iter().map(|(i, s)| (*i, s)).collect();
    let refs: Vec<(usize, &Sketch)> = sketches.iter().map(|(i, s)| (*i, s)).collect();
    text::candidate_pairs(&refs)
        .into_iter()
        .filter_map(|(a, b)| {
            let (ma, mb) = (&twin.messages[a], &twin.messages[b]);
            if ma.author == mb.author || (ma.at - mb.at).abs() > window {
                return None;
            }
            let similarity = by_index.get(&a)?.similarity(by_index.get(&b)?);
            (similarity >= settings.config.duplicate_similarity).then_some((a, b, similarity))
        })
        .collect()
}

/// Messages per repository per day (days since the epoch), bots left out.
fn daily_counts(twin: &Twin, features: &[Option<Features>]) -> BTreeMap<(String, i64), usize> {
    let mut counts = BTreeMap::new();
    for (i, m) in twin.messages.iter().enumerate() {
        if let (Some(repo), Some(_)) = (&m.repository, &features[i]) {
            *counts.entry((repo.clone(), day_of(m.at))).or_default() += 1;
        }
    }
    counts
}

fn day_of(at: Time) -> i64 {
    at.div_euclid(86_400)
}

fn score(
    twin: &Twin,
    settings: &Settings,
    features: &[Option<Features>],
    duplicates: &[(usize, usize, f64)],
    daily: &BTreeMap<(String, i64), usize>,
    messages: Vec<usize>,
) -> Campaign {
    let config = &settings.config;
    let mut c = Campaign {
        first: messages.first().map_or(0, |i| twin.messages[*i].at),
        last: messages.last().map_or(0, |i| twin.messages[*i].at),
        messages,
        participants: BTreeSet::new(),
        repositories: BTreeSet::new(),
        pressed: BTreeSet::new(),
        threads: BTreeSet::new(),
        beneficiaries: BTreeSet::new(),
        scores: BTreeMap::new(),
        evidence: Vec::new(),
        risk: 0.0,
    };
    let mut first_by: BTreeMap<String, usize> = BTreeMap::new();
    for &i in &c.messages {
        let m = &twin.messages[i];
        if let Some(author) = &m.author {
            c.participants.insert(author.clone());
            first_by.entry(author.clone()).or_insert(i);
        }
        c.repositories.extend(m.repository.iter().cloned());
        c.threads.insert(m.thread.clone());
        if let Some(f) = &features[i] {
            c.pressed.extend(f.pressed.iter().cloned());
        }
    }
    let in_campaign: BTreeSet<usize> = c.messages.iter().copied().collect();
    let feature = |i: usize| features[i].clone().unwrap_or_default();

    // Who took part, and how much standing each had when first heard.
    for (author, &i) in &first_by {
        let f = feature(i);
        let age = f
            .age_days
            .map_or("of unknown age".to_string(), |d| format!("{d:.0} days old"));
        let association = twin.messages[i].association.as_deref().unwrap_or("NONE");
        if let Some(account) = twin.accounts.get(author) {
            c.evidence.push(Evidence {
                statement: format!(
                    "{} ({age}, {association}, {} earlier messages) wrote {} of the campaign's messages",
                    account.login,
                    f.earlier,
                    c.messages
                        .iter()
                        .filter(|j| twin.messages[**j].author.as_deref() == Some(author))
                        .count(),
                ),
                subject: account.reference.clone(),
                provenance: account.provenance.clone(),
            });
        }
    }

    // Near-duplicates.
    let pairs: Vec<&(usize, usize, f64)> = duplicates
        .iter()
        .filter(|(a, b, _)| in_campaign.contains(a) && in_campaign.contains(b))
        .collect();
    let copiers: BTreeSet<&str> = pairs
        .iter()
        .flat_map(|(a, b, _)| [*a, *b])
        .filter_map(|i| twin.messages[i].author.as_deref())
        .collect();
    if copiers.len() >= 2 {
        // Two fresh accounts writing the same words is already unusual;
        // three is a script.
        c.scores.insert(
            Signal::NearDuplicate,
            (0.4 + 0.3 * (copiers.len() - 1) as f64).min(1.0),
        );
        for (a, b, similarity) in pairs.iter().take(5) {
            let (ma, mb) = (&twin.messages[*a], &twin.messages[*b]);
            c.evidence.push(message_evidence(
                mb,
                format!(
                    "{} by {} is {:.0}% similar to {} by {} ({})",
                    describe(twin, mb),
                    author_login(twin, mb),
                    similarity * 100.0,
                    describe(twin, ma),
                    author_login(twin, ma),
                    Signal::NearDuplicate.as_str(),
                ),
            ));
        }
    }

    // Freshness.
    let fresh = first_by.values().filter(|i| feature(**i).fresh).count();
    if fresh > 0 {
        c.scores.insert(
            Signal::FreshAccount,
            fresh as f64 / first_by.len().max(1) as f64,
        );
    }

    // A cohort: accounts created within days of each other.
    // Only accounts young when they wrote: accounts made years ago within
    // days of each other are a coincidence, not a cohort.
    let mut created: Vec<(Time, &Account)> = first_by
        .iter()
        .filter(|(_, i)| feature(**i).fresh)
        .filter_map(|(p, _)| twin.accounts.get(p))
        .filter_map(|a| a.created_at.map(|t| (t, a)))
        .collect();
    created.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.login.cmp(&b.1.login)));
    let span = seconds(config.cohort_days);
    let mut best: &[(Time, &Account)] = &[];
    for start in 0..created.len() {
        let end = created[start..].partition_point(|(t, _)| *t - created[start].0 <= span);
        if end > best.len() {
            best = &created[start..start + end];
        }
    }
    if let (Some((from, first)), Some((to, _))) = (best.first(), best.last())
        && best.len() >= 2
    {
        c.scores
            .insert(Signal::Cohort, ((best.len() - 1) as f64 / 2.0).min(1.0));
        let names: Vec<&str> = best.iter().map(|(_, a)| a.login.as_str()).collect();
        c.evidence.push(Evidence {
            statement: format!(
                "{} were created within {:.0} days of each other, between {} and {} ({})",
                names.join(", "),
                ((to - from) as f64 / DAY).ceil(),
                date(*from),
                date(*to),
                Signal::Cohort.as_str(),
            ),
            subject: first.reference.clone(),
            provenance: first.provenance.clone(),
        });
    }

    // Bursts against the repository's own baseline.
    let mut campaign_daily: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for &i in &c.messages {
        if let Some(repo) = &twin.messages[i].repository {
            *campaign_daily
                .entry((repo.clone(), day_of(twin.messages[i].at)))
                .or_default() += 1;
        }
    }
    let baseline_days = seconds(config.baseline_days.ceil()) / 86_400;
    let mut burst: Option<(f64, String, i64, usize, f64)> = None;
    for ((repo, day), ours) in &campaign_daily {
        let total = daily
            .get(&(repo.clone(), *day))
            .copied()
            .unwrap_or_default();
        let before: usize = daily
            .range((repo.clone(), day - baseline_days)..(repo.clone(), *day))
            .map(|(_, n)| *n)
            .sum();
        let mean = before as f64 / baseline_days as f64;
        if total >= config.burst_min_messages && total as f64 >= config.burst_factor * mean.max(0.5)
        {
            let share = *ours as f64 / total as f64;
            if burst.as_ref().is_none_or(|b| share > b.0) {
                burst = Some((share, repo.clone(), *day, total, mean));
            }
        }
    }
    if let Some((share, repo, day, total, mean)) = burst {
        c.scores.insert(Signal::Burst, share);
        if let Some(r) = twin.repositories.get(&repo) {
            c.evidence.push(Evidence {
                statement: format!(
                    "{} had {total} messages on {} against a daily mean of {mean:.1} over the {baseline_days} days before ({})",
                    twin.repository_name(&repo),
                    date(day * 86_400),
                    Signal::Burst.as_str(),
                ),
                subject: r.reference.clone(),
                provenance: r.provenance.clone(),
            });
        }
    }

    // Pressure and asks.
    let mut pressing: BTreeSet<&str> = BTreeSet::new();
    let mut asking: BTreeSet<&str> = BTreeSet::new();
    let mut cues: BTreeSet<Cue> = BTreeSet::new();
    let mut reach: f64 = 0.0;
    let mut cited = 0;
    for &i in &c.messages {
        let m = &twin.messages[i];
        let f = feature(i);
        let author = m.author.as_deref().unwrap_or_default();
        if !f.cues.is_empty() {
            pressing.insert(author);
            cues.extend(f.cues.iter().copied());
        }
        if !f.asks.is_empty() {
            asking.insert(author);
            reach = f.asks.iter().map(|a| a.reach()).fold(reach, f64::max);
        }
        if (!f.cues.is_empty() || !f.asks.is_empty()) && cited < 10 {
            cited += 1;
            let mut said: Vec<String> = Vec::new();
            if !f.cues.is_empty() {
                let names: Vec<&str> = f.cues.iter().map(|c| c.as_str()).collect();
                said.push(format!(
                    "{} ({})",
                    Signal::Pressure.as_str(),
                    names.join(", ")
                ));
            }
            if !f.asks.is_empty() {
                let names: Vec<&str> = f.asks.iter().map(|a| a.as_str()).collect();
                said.push(format!(
                    "{} ({})",
                    Signal::PrivilegeAsk.as_str(),
                    names.join(", ")
                ));
            }
            c.evidence.push(message_evidence(
                m,
                format!(
                    "{} by {} on {}: {}",
                    describe(twin, m),
                    author_login(twin, m),
                    date(m.at),
                    said.join("; ")
                ),
            ));
        }
    }
    if !pressing.is_empty() {
        c.scores.insert(
            Signal::Pressure,
            (0.25 * pressing.len() as f64 + 0.1 * cues.len() as f64).min(1.0),
        );
    }
    if !asking.is_empty() {
        c.scores.insert(
            Signal::PrivilegeAsk,
            reach * (0.7 + 0.15 * asking.len() as f64).min(1.0),
        );
    }

    // Convergence: several accounts pressing one target across threads, or
    // speaking for each other (one names another as the one to trust).
    let (p, t) = (c.participants.len(), c.threads.len());
    let vouching = c.messages.iter().any(|i| {
        let m = &twin.messages[*i];
        m.mentions
            .iter()
            .any(|a| Some(a) != m.author.as_ref() && c.participants.contains(a))
    });
    if p >= 2 && (t >= 2 || vouching) {
        let spread = if vouching {
            1.0
        } else {
            ((t - 1) as f64 / 2.0).min(1.0)
        };
        let s = 0.5 * ((p - 1) as f64 / 2.0).min(1.0) + 0.5 * spread;
        c.scores.insert(Signal::Convergence, s);
        let target = c
            .pressed
            .iter()
            .next()
            .map(|a| twin.login(a).to_string())
            .or_else(|| {
                c.main_repository(twin)
                    .map(|r| twin.repository_name(&r).to_string())
            })
            .unwrap_or_default();
        if let Some(&i) = c.messages.first() {
            c.evidence.push(message_evidence(
                &twin.messages[i],
                format!(
                    "{p} low-footprint accounts pressed {target} across {t} thread{}{} between {} and {} ({})",
                    if t == 1 { "" } else { "s" },
                    if vouching { ", one naming another" } else { "" },
                    date(c.first),
                    date(c.last),
                    Signal::Convergence.as_str()
                ),
            ));
        }
    }

    // The graph join: write access granted on a target soon after.
    let until = c.last + seconds(config.grant_within_days);
    let mentioned: BTreeSet<&str> = c
        .messages
        .iter()
        .flat_map(|i| twin.messages[*i].mentions.iter().map(String::as_str))
        .collect();
    let mut grant_score: f64 = 0.0;
    let grants = c.repositories.iter().flat_map(|r| twin.grants_on(r));
    for g in grants {
        // A permission first seen together with its repository was there
        // when the twin started watching: when it was granted is unknown,
        // and the first sync must not make every maintainer a beneficiary.
        let known_since = twin
            .repositories
            .get(&g.repository)
            .and_then(|r| crate::twin::parse_precise(&r.provenance.first_seen));
        let granted = crate::twin::parse_precise(&g.provenance.first_seen);
        if let (Some(known), Some(granted)) = (known_since, granted)
            && granted <= known
        {
            continue;
        }
        if !(g.can_write()
            && c.repositories.contains(&g.repository)
            && g.since > c.first
            && g.since <= until
            && !twin.could_write(&g.account, &g.repository, c.first))
        {
            continue;
        }
        let active_there = twin
            .first_message_in(&g.account, &g.repository)
            .is_some_and(|t| t < g.since);
        let tied = mentioned.contains(g.account.as_str())
            || c.participants.contains(&g.account)
            || active_there;
        let s = if tied { 1.0 } else { 0.6 };
        if c.beneficiaries.insert(g.account.clone()) {
            let account = twin.accounts.get(&g.account);
            c.evidence.push(Evidence {
                statement: format!(
                    "{} gained {} on {} on {}, {:.0} days after the campaign's last message{} ({})",
                    twin.login(&g.account),
                    g.role,
                    twin.repository_name(&g.repository),
                    date(g.since),
                    ((g.since - c.last) as f64 / DAY).max(0.0),
                    if tied {
                        "; the campaign named or involved this account"
                    } else {
                        ""
                    },
                    Signal::PrivilegeGrant.as_str(),
                ),
                subject: account.map_or_else(
                    || org_mesh_plugin::types::NodeRef {
                        label: "Account".into(),
                        key: g.account.clone(),
                    },
                    |a| a.reference.clone(),
                ),
                provenance: g.provenance.clone(),
            });
        }
        grant_score = grant_score.max(s);
    }
    if grant_score > 0.0 {
        c.scores.insert(Signal::PrivilegeGrant, grant_score);
    }

    // Copies, cohorts and bursts without pressure or an ask are how
    // contribution drives and popular bugs look: what makes a campaign is
    // what it asks of the maintainers.
    let narrative =
        c.scores.contains_key(&Signal::Pressure) || c.scores.contains_key(&Signal::PrivilegeAsk);
    c.risk = if !narrative {
        0.0
    } else {
        1.0 - c
            .scores
            .iter()
            .map(|(signal, s)| 1.0 - settings.weight(*signal) * s.clamp(0.0, 1.0))
            .product::<f64>()
    };
    c
}

fn message_evidence(m: &Message, statement: String) -> Evidence {
    Evidence {
        statement,
        subject: m.reference.clone(),
        provenance: m.provenance.clone(),
    }
}

/// A message for people, without its text: `issue-comment in acme/xz#12`.
fn describe(twin: &Twin, m: &Message) -> String {
    format!("{} in {}", m.kind, twin.repository_name(&m.thread))
}

fn author_login<'a>(twin: &'a Twin, m: &'a Message) -> &'a str {
    m.author
        .as_deref()
        .map_or("an unknown author", |a| twin.login(a))
}

/// The provenance of the campaign's first message, for findings about it.
pub fn first_provenance(twin: &Twin, c: &Campaign) -> Option<Provenance> {
    c.messages
        .first()
        .map(|i| twin.messages[*i].provenance.clone())
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn new(n: usize) -> Self {
        Self((0..n).collect())
    }

    fn root(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }
}
