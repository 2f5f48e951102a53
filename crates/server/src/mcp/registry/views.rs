//! What a connection sees: the toolsets, the selections of configuration,
//! URL, header and token, and the tools and resources a view lists.

use super::*;

impl Registry {
    /// The operations in the toolsets `names` (`all`: every one); names
    /// that are no toolset add nothing.
    pub(super) fn members<S: AsRef<str>>(&self, names: &[S]) -> FixedBitSet {
        let mut out = FixedBitSet::with_capacity(self.entries.len());
        for name in names {
            match name.as_ref() {
                ALL_TOOLSETS => out.union_with(&self.operations),
                n => {
                    if let Some(set) = self.toolsets.get(n) {
                        out.union_with(set);
                    }
                }
            }
        }
        out
    }

    /// The toolsets, with their operations' names.
    pub fn toolsets(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.toolsets.iter().map(|(name, members)| {
            (
                name.as_str(),
                members
                    .ones()
                    .map(|i| self.entries[i].def.tool.name.as_ref())
                    .collect(),
            )
        })
    }

    /// Whether `selection` names only toolsets there are (or `all`).
    pub fn check(&self, selection: &Selection) -> Result<(), String> {
        for name in selection.toolsets.iter().flatten() {
            if name != ALL_TOOLSETS && !self.toolsets.contains_key(name) {
                let known: Vec<&str> = self.toolsets.keys().map(String::as_str).collect();
                return Err(format!(
                    "there is no toolset `{name}`; there are: {}, and {ALL_TOOLSETS}",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// What a connection with these selections (configuration's is always
    /// added) lists and may call: the operations every selection allows,
    /// read-only ones only if any selection or the configuration says so,
    /// and the built-in tools. When no selection names toolsets, the
    /// configured ones are listed, and the search tools reach the rest.
    /// A selection naming an unknown toolset allows nothing of it (see
    /// [`Self::check`] for the error to show).
    pub fn view(&self, selections: &[&Selection]) -> View {
        let mut callable = self.operations.clone();
        let mut named: Option<Vec<String>> = None;
        let mut read_only = self.config.read_only;
        for s in selections {
            if let Some(sets) = &s.toolsets {
                let sets: Vec<&String> = sets.iter().collect();
                callable.intersect_with(&self.members(&sets));
                named
                    .get_or_insert_with(Vec::new)
                    .extend(sets.into_iter().cloned());
            }
            read_only |= s.read_only;
        }
        let mut listed = if named.is_some() {
            callable.clone()
        } else {
            let mut l = self.default_listed.clone();
            l.intersect_with(&callable);
            l
        };
        let mut always = self.always.clone();
        if read_only {
            callable.intersect_with(&self.read_only);
            listed.intersect_with(&self.read_only);
            always.intersect_with(&self.read_only);
        }
        // Operations callable but not listed: the search tools reach them.
        let hidden = callable.difference(&listed).next().is_some();
        callable.union_with(&always);
        listed.union_with(&always);
        if hidden {
            callable.union_with(&self.meta);
            listed.union_with(&self.meta);
        }
        View {
            callable,
            listed,
            read_only,
            named,
        }
    }

    /// Whether everything a connection with `narrow` may call, one with
    /// `wide` may call too (a token issued for `wide` may be used at
    /// `narrow`).
    pub fn covers(&self, wide: &Selection, narrow: &Selection) -> bool {
        // The search tools only reach what is callable anyway.
        let reach = |s: &Selection| {
            let mut c = self.view(&[s]).callable;
            c.difference_with(&self.meta);
            c
        };
        reach(narrow).is_subset(&reach(wide))
    }

    /// Scopes a connection with this selection may need: those of the tools
    /// it may call that can be granted.
    pub fn scopes_for(&self, selection: &Selection) -> Vec<String> {
        let view = self.view(&[selection]);
        let mut out: Vec<String> = view
            .callable
            .ones()
            .flat_map(|i| self.entries[i].def.scopes.iter())
            .filter(|s| self.config.issuable.contains(s))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every scope some tool needs: a token holding all of them is never
    /// refused for its scopes.
    pub fn every_scope(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .entries
            .iter()
            .flat_map(|e| e.def.scopes.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The tools a connection lists.
    pub fn list(&self, view: &View) -> Vec<Tool> {
        view.listed
            .ones()
            .map(|i| match self.entries[i].runner {
                Runner::Meta(m) if view.read_only => self.meta_read_only[m as usize].clone(),
                _ => self.entries[i].def.tool.clone(),
            })
            .collect()
    }

    /// The resources a connection lists.
    pub fn list_resources(&self, view: &View) -> Vec<Resource> {
        self.resources
            .iter()
            .filter(|r| r.as_tool.is_none_or(|t| view.callable.contains(t)))
            .map(|r| r.def.resource.clone())
            .collect()
    }
}
