//! Which events a subscriber wants: by event type, category and source. An empty list means
//! "any"; the parts combine with AND.

use serde::Deserialize;
use utoipa::ToSchema;

use super::Published;

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub sources: Vec<String>,
}

impl Filter {
    /// Builds a filter from comma-separated lists (query parameters).
    pub fn from_lists(
        event_types: Option<&str>,
        categories: Option<&str>,
        sources: Option<&str>,
    ) -> Self {
        let split = |raw: Option<&str>| -> Vec<String> {
            raw.map(|r| {
                r.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
        };
        Self {
            event_types: split(event_types),
            categories: split(categories),
            sources: split(sources),
        }
    }

    /// Category names that are not one of the five categories.
    pub fn unknown_categories(&self) -> Vec<&str> {
        self.categories
            .iter()
            .filter(|c| crate::event::Category::parse(c).is_none())
            .map(String::as_str)
            .collect()
    }

    pub fn matches(&self, published: &Published) -> bool {
        let event = &published.event;
        (self.event_types.is_empty() || self.event_types.contains(&event.event_type))
            && (self.categories.is_empty()
                || self.categories.iter().any(|c| c == event.category.as_str()))
            && (self.sources.is_empty() || self.sources.contains(&event.source))
    }
}
