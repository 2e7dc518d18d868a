//! [`wire_enum!`]: the one way a fieldless enum that crosses the wire and is stored as text is
//! declared, so its name on the wire, in the database and in URLs is written once per variant.

/// Declares the enum with serde's derives and, for it: `ALL` (every variant, in order),
/// `as_str` and `parse` (the wire name), `Display`, `FromStr`, and `TryFrom<String>` (what sqlx's
/// `#[sqlx(try_from = "String")]` reads a text column through).
///
/// ```
/// loupe_protocol::wire_enum! {
///     /// Doc comments and attributes go through.
///     pub enum Colour { Red = "red", DarkBlue = "dark_blue" }
/// }
/// assert_eq!(Colour::DarkBlue.as_str(), "dark_blue");
/// assert_eq!("red".parse::<Colour>(), Ok(Colour::Red));
/// ```
#[macro_export]
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The name on the wire and in storage.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant named `text`, if any.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                formatter.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownName;

            fn from_str(text: &str) -> Result<$name, $crate::UnknownName> {
                $name::parse(text).ok_or_else(|| $crate::UnknownName {
                    of: stringify!($name),
                    name: text.to_owned(),
                })
            }
        }

        impl ::std::convert::TryFrom<String> for $name {
            type Error = $crate::UnknownName;

            fn try_from(text: String) -> Result<$name, $crate::UnknownName> {
                text.parse()
            }
        }
    };
}

/// A name that is none of an enum's variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    pub of: &'static str,
    pub name: String,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{:?} is not a {}", self.name, self.of)
    }
}

impl std::error::Error for UnknownName {}
