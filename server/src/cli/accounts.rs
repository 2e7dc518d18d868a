//! `loupe user|group|token …`: account administration from the server's shell, against the same
//! database the server uses. Each command runs the same operation as the matching API route, as
//! the `cli` actor with an administrator's rights, and is written to the audit trail.

use clap::{Args, Subcommand};
use loupe_protocol::{GroupChanges, NewGroup, NewToken, NewUser, Role, UserChanges};

use crate::{
    config::{DEFAULT_DATABASE_URL, Secret},
    error::ApiError,
    identity::auth::Actor,
    identity::{self, credentials},
    store::Store,
};

/// Where the commands find Loupe's database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// The server's DATABASE_URL. Default: sqlite://data/loupe.db.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: Secret,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password, one is generated and printed.
    Add {
        username: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long, value_parser = parse_role, default_value = "user")]
        role: Role,
        #[arg(long)]
        password: Option<String>,
    },
    /// List every user.
    List,
    /// Give a user another role: admin, auditor or user.
    SetRole {
        username: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Stop a user from logging in or using their tokens; their history stays.
    Disable { username: String },
    /// Let a disabled user back in.
    Enable { username: String },
    /// Set a new password (generated and printed without --password); ends their logins.
    ResetPassword {
        username: String,
        #[arg(long)]
        password: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Add {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List every group with its members.
    List,
    /// Rename a group.
    Rename { name: String, new_name: String },
    /// Delete a group (its members stay).
    Delete { name: String },
    /// Add a user to a group.
    AddMember { group: String, username: String },
    /// Remove a user from a group.
    RemoveMember { group: String, username: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; the secret is printed once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List a user's tokens.
    List {
        #[arg(long)]
        user: String,
    },
    /// Revoke a token by its id.
    Revoke { id: String },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("{text:?} is not a role: use admin, auditor or user"))
}

fn new_password(given: Option<String>) -> (String, bool) {
    match given {
        Some(password) => (password, false),
        None => (credentials::generate("")[..24].to_owned(), true),
    }
}

async fn open(database: &DatabaseArgs) -> anyhow::Result<Store> {
    Ok(Store::open(&database.database_url, 2).await?)
}

/// Prints an operation's error the way a person reads it, and fails the command.
fn report(error: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", error.message())
}

pub async fn run_user(database: &DatabaseArgs, command: UserCommand) -> anyhow::Result<()> {
    let store = open(database).await?;
    let actor = Actor::command_line();
    match command {
        UserCommand::Add {
            username,
            display_name,
            role,
            password,
        } => {
            let (password, generated) = new_password(password);
            let user = identity::create_user(
                &store,
                &actor,
                &NewUser {
                    username,
                    display_name,
                    role,
                    password: password.clone(),
                },
            )
            .await
            .map_err(report)?;
            println!(
                "created {} ({}), id {}",
                user.username,
                user.role.as_str(),
                user.id
            );
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::List => {
            let users = identity::list_users(&store, &actor).await.map_err(report)?;
            println!(
                "{:<24} {:<8} {:<9} {:<28} GROUPS",
                "USERNAME", "ROLE", "STATE", "DISPLAY NAME"
            );
            for user in users {
                let groups: Vec<_> = user
                    .groups
                    .iter()
                    .map(|group| group.name.as_str())
                    .collect();
                println!(
                    "{:<24} {:<8} {:<9} {:<28} {}",
                    user.username,
                    user.role.as_str(),
                    if user.disabled { "disabled" } else { "active" },
                    user.display_name,
                    groups.join(",")
                );
            }
        }
        UserCommand::SetRole { username, role } => {
            change_user(
                &store,
                &actor,
                &username,
                UserChanges {
                    role: Some(role),
                    ..Default::default()
                },
            )
            .await?;
            println!("{username} is now {}", role.as_str());
        }
        UserCommand::Disable { username } => {
            change_user(
                &store,
                &actor,
                &username,
                UserChanges {
                    disabled: Some(true),
                    ..Default::default()
                },
            )
            .await?;
            println!("{username} is disabled");
        }
        UserCommand::Enable { username } => {
            change_user(
                &store,
                &actor,
                &username,
                UserChanges {
                    disabled: Some(false),
                    ..Default::default()
                },
            )
            .await?;
            println!("{username} is enabled");
        }
        UserCommand::ResetPassword { username, password } => {
            let (password, generated) = new_password(password);
            let changes = UserChanges {
                password: Some(password.clone()),
                ..Default::default()
            };
            change_user(&store, &actor, &username, changes).await?;
            println!("password of {username} changed; their browser logins are ended");
            if generated {
                println!("password: {password}");
            }
        }
    }
    store.close().await;
    Ok(())
}

async fn change_user(
    store: &Store,
    actor: &Actor,
    username: &str,
    changes: UserChanges,
) -> anyhow::Result<()> {
    let user = identity::user_by_username(store, username)
        .await
        .map_err(report)?;
    identity::update_user(store, actor, &user.id, &changes)
        .await
        .map_err(report)?;
    Ok(())
}

pub async fn run_group(database: &DatabaseArgs, command: GroupCommand) -> anyhow::Result<()> {
    let store = open(database).await?;
    let actor = Actor::command_line();
    match command {
        GroupCommand::Add { name, description } => {
            let group = identity::create_group(&store, &actor, &NewGroup { name, description })
                .await
                .map_err(report)?;
            println!("created group {}, id {}", group.name, group.id);
        }
        GroupCommand::List => {
            println!("{:<24} {:<36} MEMBERS", "NAME", "DESCRIPTION");
            for group in identity::list_groups(&store, &actor)
                .await
                .map_err(report)?
            {
                let members: Vec<_> = group
                    .members
                    .iter()
                    .map(|member| member.username.as_str())
                    .collect();
                println!(
                    "{:<24} {:<36} {}",
                    group.name,
                    group.description,
                    members.join(",")
                );
            }
        }
        GroupCommand::Rename { name, new_name } => {
            let group = identity::group_by_name(&store, &name)
                .await
                .map_err(report)?;
            let changes = GroupChanges {
                name: Some(new_name.clone()),
                ..Default::default()
            };
            identity::update_group(&store, &actor, &group.id, &changes)
                .await
                .map_err(report)?;
            println!("group {name} is now {new_name}");
        }
        GroupCommand::Delete { name } => {
            let group = identity::group_by_name(&store, &name)
                .await
                .map_err(report)?;
            identity::delete_group(&store, &actor, &group.id)
                .await
                .map_err(report)?;
            println!("deleted group {name}");
        }
        GroupCommand::AddMember { group, username } => {
            let (group_record, user) = group_and_user(&store, &group, &username).await?;
            identity::add_member(&store, &actor, &group_record.id, &user.id)
                .await
                .map_err(report)?;
            println!("{username} is in {group}");
        }
        GroupCommand::RemoveMember { group, username } => {
            let (group_record, user) = group_and_user(&store, &group, &username).await?;
            identity::remove_member(&store, &actor, &group_record.id, &user.id)
                .await
                .map_err(report)?;
            println!("{username} is no longer in {group}");
        }
    }
    store.close().await;
    Ok(())
}

async fn group_and_user(
    store: &Store,
    group: &str,
    username: &str,
) -> anyhow::Result<(crate::store::GroupRecord, crate::store::UserRecord)> {
    let group = identity::group_by_name(store, group)
        .await
        .map_err(report)?;
    let user = identity::user_by_username(store, username)
        .await
        .map_err(report)?;
    Ok((group, user))
}

pub async fn run_token(database: &DatabaseArgs, command: TokenCommand) -> anyhow::Result<()> {
    let store = open(database).await?;
    let actor = Actor::command_line();
    match command {
        TokenCommand::Create {
            user,
            name,
            expires_in_days,
        } => {
            let owner = identity::user_by_username(&store, &user)
                .await
                .map_err(report)?;
            let created = identity::create_token(
                &store,
                &actor,
                &owner,
                &NewToken {
                    name,
                    expires_in_days,
                },
            )
            .await
            .map_err(report)?;
            println!(
                "token {} for {user}, id {}",
                created.token.name, created.token.id
            );
            println!("secret (shown once): {}", created.secret);
        }
        TokenCommand::List { user } => {
            let owner = identity::user_by_username(&store, &user)
                .await
                .map_err(report)?;
            println!(
                "{:<36} {:<20} {:<13} {:<28} STATE",
                "ID", "NAME", "PREFIX", "LAST USED"
            );
            for token in identity::list_tokens(&store, &actor, &owner.id)
                .await
                .map_err(report)?
            {
                let state = if token.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let last_used = token
                    .last_used_at
                    .map(|at| at.to_string())
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{:<36} {:<20} {:<13} {:<28} {state}",
                    token.id, token.name, token.prefix, last_used
                );
            }
        }
        TokenCommand::Revoke { id } => {
            identity::revoke_token(&store, &actor, &id)
                .await
                .map_err(report)?;
            println!("token {id} is revoked");
        }
    }
    store.close().await;
    Ok(())
}
