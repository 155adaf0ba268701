//! The findings view: folds observations into the inventory and, at evaluation points,
//! runs every rule whose needs are complete, turning the difference with the open findings
//! into `FindingOpened` / `FindingUpdated` / `FindingResolved` events.
//!
//! It is a pure fold: the same events in the same order give the same derived events,
//! which is what makes a replay of the log an exact audit of the live run. Time is event
//! time, and evaluations happen at event-defined points: after completeness changed (a
//! sync finished, a watch or poll failed, a poll read what the last could not), after object
//! changes once at least [`EVALUATE_EVERY_MS`] of event time passed since the last
//! evaluation, and on a tick when something changed or an age threshold the rules wait for
//! has been reached.
//!
//! The open findings depend only on the observed state, not on the path to it (a property
//! test checks this), so a long history can be caught up quickly: fold the observations
//! with [`FindingsView::observe`] (no evaluation), restore the findings recorded in the
//! derived stream with [`FindingsView::restore`], then [`FindingsView::evaluate`] once.

use std::collections::BTreeMap;

use ktd_model::{
    Envelope, Event, EventId, Finding, FindingId, FindingKind, Severity, SourceId, Timestamp,
};
use serde::Serialize;

use crate::config::FindingsConfig;
use crate::inventory::{Applied, Inventory, lacking};
use crate::rules::{Ctx, RULES, Rule};
use crate::topology::Topology;

/// Minimum event time between two evaluations triggered by object changes alone.
pub const EVALUATE_EVERY_MS: i64 = 250;

/// The findings view.
#[derive(Clone, Debug)]
pub struct FindingsView {
    cfg: FindingsConfig,
    inv: Inventory,
    open: BTreeMap<FindingId, Finding>,
    /// Rules not judged at the last evaluation, with what they lacked.
    not_judged: BTreeMap<(FindingKind, &'static str), Vec<String>>,
    dirty: bool,
    last_eval: Option<Timestamp>,
    /// When an age condition checked by the last evaluation becomes true.
    deadline: Option<Timestamp>,
}

impl FindingsView {
    /// An empty view.
    pub fn new(cfg: FindingsConfig) -> Self {
        FindingsView {
            cfg,
            inv: Inventory::default(),
            open: BTreeMap::new(),
            not_judged: BTreeMap::new(),
            dirty: false,
            last_eval: None,
            deadline: None,
        }
    }

    /// Folds an observation into the inventory without evaluating (catching up on history:
    /// call [`FindingsView::evaluate`] once at the end).
    pub fn observe(&mut self, env: &Envelope) {
        self.observe_owned(env.clone());
    }

    /// [`FindingsView::observe`], taking the envelope (no copy of its objects).
    pub fn observe_owned(&mut self, env: Envelope) {
        if self.inv.apply_owned(env) != Applied::Nothing {
            self.dirty = true;
        }
    }

    /// Folds back one of this view's own past derived events (from the derived stream), so
    /// the open findings keep the `first_seen` they were recorded with.
    pub fn restore(&mut self, event: &Event) {
        match event {
            Event::FindingOpened { finding } | Event::FindingUpdated { finding } => {
                let first_seen = self
                    .open
                    .get(&finding.id)
                    .map_or(finding.first_seen, |f| f.first_seen);
                let mut f = finding.clone();
                f.first_seen = first_seen;
                self.open.insert(f.id, f);
            }
            Event::FindingResolved { id, .. } => {
                self.open.remove(id);
            }
            _ => {}
        }
        self.dirty = true;
    }

    /// Folds one event; returns the derived events it caused (usually none).
    pub fn apply(&mut self, env: &Envelope) -> Vec<Event> {
        let trigger = match self.inv.apply(env) {
            Applied::Nothing => false,
            Applied::Objects => {
                self.dirty = true;
                false
            }
            Applied::Boundary => true,
            Applied::Settled => self.dirty || self.deadline.is_some_and(|d| self.inv.now() >= d),
        };
        let now = self.inv.now();
        let due = self
            .last_eval
            .is_none_or(|t| now.unix_ms() - t.unix_ms() >= EVALUATE_EVERY_MS);
        if trigger || (self.dirty && due) {
            self.evaluate()
        } else {
            Vec::new()
        }
    }

    /// [`FindingsView::apply`], with the derived events in envelopes from `source`: their
    /// time is the trigger's, and their ids derive from the trigger's id, so re-deriving
    /// them from the same log (a restart, a replay) gives the same ids and the log keeps
    /// each once.
    pub fn apply_enveloped(&mut self, env: &Envelope, source: &SourceId) -> Vec<Envelope> {
        let events = self.apply(env);
        enveloped(events, (env.id, env.observed_at), source)
    }

    /// [`FindingsView::evaluate`] after a catch-up that ended with the observation `last`
    /// (its id and time), enveloped as if that observation had triggered it.
    pub fn evaluate_enveloped(
        &mut self,
        last: (EventId, Timestamp),
        source: &SourceId,
    ) -> Vec<Envelope> {
        let events = self.evaluate();
        enveloped(events, last, source)
    }

    /// Evaluates every rule now (at the latest event time) and returns the changes.
    pub fn evaluate(&mut self) -> Vec<Event> {
        let now = self.inv.now();
        self.dirty = false;
        self.last_eval = Some(now);
        let topo = Topology::build(&self.inv, &self.cfg);
        let ctx = Ctx {
            inv: &self.inv,
            topo: &topo,
            cfg: &self.cfg,
            now,
            deadline: std::cell::Cell::new(None),
        };
        let mut judged: Vec<(&Rule, Vec<Finding>)> = Vec::new();
        let mut not_judged = BTreeMap::new();
        for rule in RULES {
            let missing = lacking(&self.inv, rule.kube, rule.nas);
            if missing.is_empty() {
                let mut found = Vec::new();
                (rule.eval)(&ctx, &mut found);
                judged.push((rule, found));
            } else {
                for subject in rule.subjects {
                    not_judged.insert((rule.kind, *subject), missing.clone());
                }
            }
        }
        self.deadline = ctx.deadline.get();
        drop(topo);
        self.not_judged = not_judged;
        let mut out = Vec::new();
        for (rule, found) in judged {
            self.reconcile(rule, found, now, &mut out);
        }
        out
    }

    fn reconcile(
        &mut self,
        rule: &Rule,
        found: Vec<Finding>,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) {
        let mut found: BTreeMap<FindingId, Finding> =
            found.into_iter().map(|f| (f.id, f)).collect();
        let in_scope: Vec<FindingId> = self
            .open
            .values()
            .filter(|f| f.kind == rule.kind && rule.subjects.contains(&f.subject.kind.as_str()))
            .map(|f| f.id)
            .collect();
        for id in in_scope {
            match found.remove(&id) {
                Some(mut new) => {
                    let old = self.open.get_mut(&id).expect("open finding");
                    new.first_seen = old.first_seen;
                    new.last_seen = now;
                    let changed = !same_evidence(old, &new);
                    *old = new;
                    if changed {
                        out.push(Event::FindingUpdated {
                            finding: old.clone(),
                        });
                    }
                }
                None => {
                    let old = self.open.remove(&id).expect("open finding");
                    out.push(Event::FindingResolved {
                        id,
                        kind: old.kind,
                        subject: old.subject,
                        reason: "its evidence is gone: the resource was cleaned up or the condition cleared".into(),
                    });
                }
            }
        }
        for (id, f) in found {
            out.push(Event::FindingOpened { finding: f.clone() });
            self.open.insert(id, f);
        }
    }

    /// The open findings, by id.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.open.values()
    }

    /// An open finding.
    pub fn finding(&self, id: &FindingId) -> Option<&Finding> {
        self.open.get(id)
    }

    /// Both systems as observed.
    pub fn inventory(&self) -> &Inventory {
        &self.inv
    }

    /// The configuration.
    pub fn config(&self) -> &FindingsConfig {
        &self.cfg
    }

    /// What the open findings add up to, and what could not be judged.
    pub fn summary(&self) -> Summary {
        let topo = Topology::build(&self.inv, &self.cfg);
        let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_severity: BTreeMap<Severity, u64> = BTreeMap::new();
        let mut reclaimable = 0;
        for f in self.open.values() {
            *by_kind.entry(f.kind.as_str().to_owned()).or_default() += 1;
            *by_severity.entry(f.severity).or_default() += 1;
            reclaimable += f.reclaimable_bytes.unwrap_or(0);
        }
        let mut not_judged: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for ((kind, _), missing) in &self.not_judged {
            let entry = not_judged.entry(kind.as_str().to_owned()).or_default();
            for m in missing {
                if !entry.contains(m) {
                    entry.push(m.clone());
                }
            }
        }
        let unowned: Vec<String> = topo
            .unowned(&self.inv)
            .into_iter()
            .map(|d| d.name.clone())
            .collect();
        Summary {
            at: self.inv.now(),
            findings: self.open.len() as u64,
            by_kind,
            by_severity,
            reclaimable_bytes: reclaimable,
            not_judged,
            volume_parents: topo.volume_parents.iter().cloned().collect(),
            detached_snapshot_parents: topo.detached_parents.iter().cloned().collect(),
            unowned_count: unowned.len() as u64,
            unowned,
        }
    }
}

fn enveloped(
    events: Vec<Event>,
    (trigger, at): (EventId, Timestamp),
    source: &SourceId,
) -> Vec<Envelope> {
    events
        .into_iter()
        .map(|event| Envelope::new(source.clone(), at, event, &trigger.to_bytes()))
        .collect()
}

/// Whether two versions of a finding carry the same evidence (times aside).
fn same_evidence(a: &Finding, b: &Finding) -> bool {
    a.severity == b.severity
        && a.related == b.related
        && a.reason == b.reason
        && a.remediation == b.remediation
        && a.reclaimable_bytes == b.reclaimable_bytes
}

/// Totals over the open findings.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Summary {
    /// Event time of the picture.
    pub at: Timestamp,
    /// Open findings.
    pub findings: u64,
    /// Open findings per kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Open findings per severity.
    pub by_severity: BTreeMap<Severity, u64>,
    /// Bytes the open findings would free.
    pub reclaimable_bytes: u64,
    /// Kinds not judged, with the Kubernetes kinds / TrueNAS methods not (completely)
    /// observed. Their previous findings stand unconfirmed.
    pub not_judged: BTreeMap<String, Vec<String>>,
    /// Volume parents judged as this cluster's.
    pub volume_parents: Vec<String>,
    /// Detached-snapshot parents judged as this cluster's.
    pub detached_snapshot_parents: Vec<String>,
    /// Managed datasets under parents no observed cluster owns: not judged.
    pub unowned_count: u64,
    /// Their names.
    pub unowned: Vec<String>,
}
