//! The signal kinds, the pressure cues and the privilege asks, with the
//! built-in phrases each cue and ask is recognised by.

/// A closed set of kinds, each with the name configuration and findings
/// use for it.
pub trait Named: Copy + 'static {
    const ALL: &'static [Self];

    fn as_str(self) -> &'static str;

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// Every name, for error messages.
    fn names() -> String {
        Self::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A kind recognised in text by phrases; operators may add their own.
pub trait Phrased: Named {
    /// What one of these is called in an error: `cue`, `ask`.
    const WHAT: &'static str;

    fn phrases(self) -> &'static [&'static str];
}

/// A kind of narrative signal, as findings and metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// Near-identical messages from distinct accounts.
    NearDuplicate,
    /// Accounts young, or without footprint in the organisation, when they
    /// wrote.
    FreshAccount,
    /// Accounts created close together.
    Cohort,
    /// More messages in a repository on a day than its baseline explains.
    Burst,
    /// Urgency, guilt, disparagement of the maintainer's pace, claims of
    /// authority.
    Pressure,
    /// Asks for maintainership, access, ownership, a release now, a
    /// disabled check or a credential.
    PrivilegeAsk,
    /// Several low-footprint accounts pressing one target across threads.
    Convergence,
    /// An account gained write or more on the target soon after.
    PrivilegeGrant,
}

impl Named for Signal {
    const ALL: &'static [Self] = &[
        Signal::NearDuplicate,
        Signal::FreshAccount,
        Signal::Cohort,
        Signal::Burst,
        Signal::Pressure,
        Signal::PrivilegeAsk,
        Signal::Convergence,
        Signal::PrivilegeGrant,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Signal::NearDuplicate => "near-duplicate",
            Signal::FreshAccount => "fresh-account",
            Signal::Cohort => "cohort",
            Signal::Burst => "burst",
            Signal::Pressure => "pressure",
            Signal::PrivilegeAsk => "privilege-ask",
            Signal::Convergence => "convergence",
            Signal::PrivilegeGrant => "privilege-grant",
        }
    }
}

impl Signal {
    /// How much the signal alone moves a campaign's risk. Footprint and
    /// timing signals are weak alone (new people join projects every day);
    /// copies across accounts, coordinated targeting and a grant that
    /// follows pressure are what set a campaign apart.
    pub fn default_weight(self) -> f64 {
        match self {
            Signal::NearDuplicate => 0.45,
            Signal::FreshAccount => 0.15,
            Signal::Cohort => 0.3,
            Signal::Burst => 0.2,
            Signal::Pressure => 0.3,
            Signal::PrivilegeAsk => 0.4,
            Signal::Convergence => 0.4,
            Signal::PrivilegeGrant => 0.55,
        }
    }
}

/// A pressure cue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cue {
    Urgency,
    Guilt,
    Pace,
    Authority,
}

impl Named for Cue {
    const ALL: &'static [Self] = &[Cue::Urgency, Cue::Guilt, Cue::Pace, Cue::Authority];

    fn as_str(self) -> &'static str {
        match self {
            Cue::Urgency => "urgency",
            Cue::Guilt => "guilt",
            Cue::Pace => "pace",
            Cue::Authority => "authority",
        }
    }
}

impl Phrased for Cue {
    const WHAT: &'static str = "cue";

    fn phrases(self) -> &'static [&'static str] {
        match self {
            Cue::Urgency => &[
                "asap",
                "urgent*",
                "right now",
                "immediately",
                "as soon as possible",
                "any update",
                "any progress",
                "still waiting",
                "how much longer",
                "how long do we",
                "no more delay*",
                "without further delay",
                "time is running out",
                "cannot wait any longer",
                "can't wait any longer",
                "we are waiting",
                "we're waiting",
                "wait* for weeks",
                "wait* for months",
                "been waiting",
                "still not merged",
                "not merged yet",
                "no answer",
                "no response",
                "without delay",
                "tonight",
                "deadline",
                "window closes",
                "stands until",
                "before it is too late",
                "time matters",
                "every day without",
                "the clock is ticking",
            ],
            Cue::Guilt => &[
                "disappoint*",
                "you owe",
                "letting down",
                "let down",
                "let us down",
                "shame",
                "unacceptable",
                "not fair to",
                "community deserves",
                "users deserve",
                "we deserve",
                "ignoring us",
                "ignoring the community",
                "don't care about",
                "do not care about",
                "irresponsible",
                "responsible thing",
                "selfish",
                "gatekeep*",
                "stalling",
                "at risk by",
                "putting * at risk",
                "putting users at risk",
            ],
            Cue::Pace => &[
                "too slow",
                "so slow",
                "no progress",
                "abandon*",
                "unmaintained",
                "not maintained",
                "dead project",
                "project is dead",
                "lost interest",
                "no longer interested",
                "can't keep up",
                "cannot keep up",
                "burn* out",
                "no time for",
                "step aside",
                "step down",
                "overwhelmed",
                "holding the project back",
                "holding back",
                "bottleneck",
                "months without",
                "years without",
                "still alive",
                "project dead",
                "is anybody * reviewing",
                "is anyone * reviewing",
                "nobody reviews",
                "nothing is merged",
                "nothing gets merged",
                "running on fumes",
                "let it rot",
                "left to rot",
                "sitting here for",
            ],
            Cue::Authority => &[
                "on behalf of",
                "as the security team",
                "as the security response team",
                "from the security team",
                "security team here",
                "security notice",
                "response team",
                "i represent",
                "we represent",
                "our legal",
                "compliance requires",
                "required by policy",
                "enterprise customers",
                "our customers demand",
                "as a core developer",
                "official request",
                "i am authorized",
                "i'm authorized",
            ],
        }
    }
}

/// An ask for privilege or handover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ask {
    Maintainer,
    Access,
    Ownership,
    Release,
    Checks,
    Credentials,
}

impl Named for Ask {
    const ALL: &'static [Self] = &[
        Ask::Maintainer,
        Ask::Access,
        Ask::Ownership,
        Ask::Release,
        Ask::Checks,
        Ask::Credentials,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Ask::Maintainer => "maintainer",
            Ask::Access => "access",
            Ask::Ownership => "ownership",
            Ask::Release => "release",
            Ask::Checks => "checks",
            Ask::Credentials => "credentials",
        }
    }
}

impl Ask {
    /// How far the ask reaches: a credential or a new maintainer hands over
    /// the project; a release now only shortens review.
    pub fn reach(self) -> f64 {
        match self {
            Ask::Credentials => 1.0,
            Ask::Maintainer | Ask::Access | Ask::Ownership => 0.9,
            Ask::Checks => 0.8,
            Ask::Release => 0.5,
        }
    }
}

impl Phrased for Ask {
    const WHAT: &'static str = "ask";

    fn phrases(self) -> &'static [&'static str] {
        match self {
            Ask::Maintainer => &[
                "new maintainer*",
                "another maintainer",
                "co-maintainer*",
                "comaintainer*",
                "second maintainer",
                "more maintainers",
                "as a maintainer",
                "as maintainer",
                "make him a maintainer",
                "make her a maintainer",
                "make them a maintainer",
                "hand over",
                "hand it over",
                "hand it to",
                "hand * to",
                "hand the keys",
                "handover",
                "hand the project",
                "take over",
                "taking over",
                "takeover",
                "pass the torch",
                "pass on maintainership",
                "give up maintainership",
                "maintainership",
            ],
            Ask::Access => &[
                "commit access",
                "commit rights",
                "write access",
                "merge access",
                "merge rights",
                "push access",
                "push rights",
                "admin access",
                "admin rights",
                "publish access",
                "publish rights",
                "release access",
                "collaborator access",
                "add him as a collaborator",
                "add her as a collaborator",
                "add them as a collaborator",
                "add me as a collaborator",
                "deploy key",
                "maintainer access",
                "maintainer rights",
                "merge rights",
            ],
            Ask::Ownership => &[
                "transfer ownership",
                "transfer the repo*",
                "transfer the project",
                "transfer the package",
                "ownership of the",
                "give ownership",
                "owner access",
                "take over the repo*",
                "take over the project",
                "take over the package",
            ],
            Ask::Release => &[
                "cut a release",
                "tag a release",
                "release now",
                "release it now",
                "publish a release",
                "publish it now",
                "push a release",
                "upload the release",
                "upload a release",
                "release today",
            ],
            Ask::Checks => &[
                "disable the check*",
                "disable the * check*",
                "disable the * * check*",
                "turn off the * check*",
                "skip the * check*",
                "bypass the * check*",
                "disable ci",
                "disable the ci",
                "disable the test*",
                "skip the check*",
                "skip ci",
                "skip the test*",
                "bypass the check*",
                "bypass review",
                "bypass branch protection",
                "turn off branch protection",
                "remove branch protection",
                "without review",
            ],
            Ask::Credentials => &[
                "share the token",
                "send the token",
                "send me the token",
                "your token",
                "access token",
                "api token",
                "api key",
                "npm token",
                "pypi token",
                "publish token",
                "release token",
                "share the * token",
                "signing key",
                "private key",
                "your credentials",
                "the credentials",
                "your password",
                "2fa code",
                "recovery code*",
            ],
        }
    }
}
